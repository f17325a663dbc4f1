-- ml.customer_predictions, written by the prediction scoring asset (replaced on every scoring run).

with source as (
    select * from {{ source('ml', 'customer_predictions') }}
),

renamed as (
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
    from source
)

select * from renamed
