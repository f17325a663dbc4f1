-- One row per customer: the churn probability over the prediction horizon and the expected orders and
-- revenue in it, with the versions of the models and of the prediction definition that produced them, or
-- the reason the customer is not predicted (no lawful basis for profiling, too little history, no approved
-- model yet). The predictive segment family (customer_segments) is named from these figures.
-- BI-facing: no PII.

with predictions as (
    select * from {{ ref('stg_ml__customer_predictions') }}
),

final as (
    select
        customer_id,
        as_of_date,
        horizon_days,
        churn_probability,
        expected_orders,
        expected_revenue_base,
        not_predicted_reason,
        churn_model_version,
        value_model_version,
        definition_version,
        predicted_at,
        dagster_run_id
    from predictions
)

select * from final
