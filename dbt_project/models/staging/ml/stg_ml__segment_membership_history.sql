-- ml.segment_membership_history, the SCD2 membership history the scoring asset maintains.
-- The table is no asset of its own: the hint below makes Dagster build this view after the scoring
-- asset that writes it.
-- depends_on: {{ source('ml', 'customer_segment_assignments') }}

with source as (
    select * from {{ source('ml', 'segment_membership_history') }}
),

renamed as (
    select
        customer_id,
        segment_family,
        segment_key,
        segment_name,
        model_name,
        model_version,
        definition_version,
        is_fallback,
        fallback_reason,
        valid_from,
        valid_to,
        is_current,
        opened_run_id,
        closed_run_id
    from source
)

select * from renamed
