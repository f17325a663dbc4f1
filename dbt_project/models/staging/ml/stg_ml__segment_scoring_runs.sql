-- ml.segment_scoring_runs, one row appended by every scoring run.
-- The table is no asset of its own: the hint below makes Dagster build this view after the scoring
-- asset that writes it.
-- depends_on: {{ source('ml', 'customer_segment_assignments') }}

with source as (
    select * from {{ source('ml', 'segment_scoring_runs') }}
),

renamed as (
    select
        dagster_run_id,
        scored_at,
        behavioural_model_version,
        behavioural_definition_version,
        rfm_definition_version,
        customers
    from source
)

select * from renamed
