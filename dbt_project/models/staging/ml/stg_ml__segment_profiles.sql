-- ml.segment_profiles, appended by the scoring asset (a re-run of the same run replaces its rows).
-- The table is no asset of its own: the hint below makes Dagster build this view after the scoring
-- asset that writes it.
-- depends_on: {{ source('ml', 'customer_segment_assignments') }}

with source as (
    select * from {{ source('ml', 'segment_profiles') }}
),

renamed as (
    select
        dagster_run_id,
        profiled_at,
        segment_family,
        segment_key,
        segment_name,
        customers,
        share,
        avg_aov_base,
        avg_frequency,
        total_revenue_base,
        avg_revenue_base,
        avg_tenure_days,
        avg_recency_days,
        avg_csat,
        model_version,
        definition_version,
        predicted_customers,
        churn_rate,
        avg_expected_revenue_base,
        total_expected_revenue_base,
        value_growth
    from source
)

select * from renamed
