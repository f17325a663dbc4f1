-- One row per scoring run, segment family and segment: how many customers, their share of the family
-- and the average customer of the segment (order value, frequency, revenue, tenure, recency, CSAT, churn
-- rate, predicted value and its growth).
-- History: every scoring run adds its profiles, so segment sizes and profiles can be followed over
-- time. BI-facing: aggregates only, no PII.
-- Written by the scoring asset together with the assignments (stg_ml__segment_profiles carries the
-- hint that builds it after that asset).

with profiles as (
    select * from {{ ref('stg_ml__segment_profiles') }}
),

final as (
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
    from profiles
)

select * from final
