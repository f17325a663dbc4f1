-- One row per customer per training snapshot date: what the customer did in the prediction horizon after
-- it (completed orders and net revenue in (as_of_date, as_of_date + horizon_days]), the labels of the churn
-- and value models, and the same measures over the horizon_days up to as_of_date (the naive "last period"
-- predictor the value model is compared with). An outcome window that ends after the data's reference date
-- is incomplete: the customer may still buy inside it, so it is flagged and never used as a label.

with snapshots as (
    select customer_id, as_of_date
    from {{ ref('customer_feature_snapshots') }}
),

settings as (
    select
        {{ prediction_horizon_days() }} as horizon_days,
        {{ as_of_date() }} as data_end_date
),

windows as (
    select
        s.customer_id,
        s.as_of_date,
        h.horizon_days,
        h.data_end_date,
        cast({{ dbt.dateadd('day', prediction_horizon_days(), 's.as_of_date') }} as date) as outcome_end_date,
        cast({{ dbt.dateadd('day', '-' ~ prediction_horizon_days(), 's.as_of_date') }} as date) as past_start_date
    from snapshots as s
    cross join settings as h
),

windowed as (
    select
        w.customer_id,
        w.as_of_date,
        count(*) filter (where o.order_date > w.as_of_date) as future_orders,
        cast(sum(cast(o.net_revenue_base as decimal(38, 6))) filter (where o.order_date > w.as_of_date) as double)
            as future_revenue_base,
        count(*) filter (where o.order_date <= w.as_of_date) as past_window_orders,
        cast(sum(cast(o.net_revenue_base as decimal(38, 6))) filter (where o.order_date <= w.as_of_date) as double)
            as past_window_revenue_base
    from windows as w
    inner join {{ ref('orders') }} as o
        on o.customer_id = w.customer_id and o.order_date > w.past_start_date and o.order_date <= w.outcome_end_date
    where o.status = 'completed'
    group by w.customer_id, w.as_of_date
),

final as (
    select
        w.customer_id,
        w.as_of_date,
        w.horizon_days,
        w.outcome_end_date,
        coalesce(f.future_orders, 0) as future_orders,
        coalesce(f.future_revenue_base, 0) as future_revenue_base,
        coalesce(f.future_orders, 0) = 0 as is_churned,
        w.outcome_end_date <= w.data_end_date as is_outcome_complete,
        coalesce(f.past_window_orders, 0) as past_window_orders,
        coalesce(f.past_window_revenue_base, 0) as past_window_revenue_base
    from windows as w
    left join windowed as f on f.customer_id = w.customer_id and f.as_of_date = w.as_of_date
)

select * from final
