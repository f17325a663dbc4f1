-- Measured lift of each playbook action: the customers of the outbox who got the action (treated) against the
-- customers its holdout kept from it, over the outcome window of each action row. Rebuilt whole from the outbox
-- and the orders on every build, so a re-run never adds a row twice.
--
-- action date: the reference date of the data the action was decided on - the latest completed order date
--     among the orders the warehouse had loaded when the action row was created (created_at is the wall-clock
--     time of the run; a delivery may be days or weeks behind it), never later than created_at's date.
-- window: the lift_window_days after the action date (order_date > action date and <= action date + days).
--     Only windows closed by the data's reference date (as_of_date()) count; open ones are counted apart.
-- outcomes per action row: purchased (>= 1 completed order in the window), revenue (net_revenue_base of those
--     orders, 0 without), retained (a customer who had bought on or before the action date and bought again in
--     the window; the retention rate is over those prior buyers only).
-- lift: treated - holdout, with a 95% normal-approximation interval: the unpooled two-proportion standard error
--     for the rates, Welch's (unequal variances) for revenue per customer, from counts, sums and sums of squares.

{%- set z = 1.959963984540054 %}

with actions as (
    select action_id, action_name, customer_id, is_holdout, created_at
    from {{ ref('segment_actions') }}
),

completed_orders as (
    select customer_id, order_date, net_revenue_base
    from {{ ref('orders') }}
    where status = 'completed' and customer_id is not null
),

-- the latest completed order date of each load of the orders table
loads as (
    select
        _loaded_at as loaded_at,
        max(order_date) as latest_order_date
    from {{ ref('stg_erp__orders') }}
    where status = 'completed'
    group by _loaded_at
),

action_dates as (
    select
        c.created_at,
        least(cast(c.created_at as date), coalesce(max(l.latest_order_date), cast(c.created_at as date)))
            as action_date
    from (select distinct created_at from actions) as c
    left join loads as l on l.loaded_at <= c.created_at
    group by c.created_at
),

reference as (
    select {{ as_of_date() }} as as_of_date
),

windows as (
    select
        a.action_id,
        a.action_name,
        a.customer_id,
        a.is_holdout,
        d.action_date,
        cast({{ dbt.dateadd('day', lift_setting('window_days'), 'd.action_date') }} as date) as window_end_date,
        r.as_of_date
    from actions as a
    inner join action_dates as d on d.created_at = a.created_at
    cross join reference as r
),

-- one row per action row whose window has closed
outcomes as (
    select
        w.action_id,
        w.action_name,
        w.is_holdout,
        max(case when o.order_date > w.action_date then 1 else 0 end) as purchased,
        coalesce(sum(case when o.order_date > w.action_date then o.net_revenue_base end), 0) as revenue_base,
        max(case when o.order_date <= w.action_date then 1 else 0 end) as bought_before
    from windows as w
    left join completed_orders as o
        on o.customer_id = w.customer_id and o.order_date <= w.window_end_date
    where w.window_end_date <= w.as_of_date
    group by w.action_id, w.action_name, w.is_holdout
),

group_totals as (
    select
        action_name,
        is_holdout,
        count(*) as customers,
        sum(purchased) as purchasers,
        sum(cast(revenue_base as double)) as revenue_base,
        sum(cast(revenue_base as double) * cast(revenue_base as double)) as revenue_base_squares,
        sum(bought_before) as prior_buyers,
        sum(bought_before * purchased) as retained
    from outcomes
    group by action_name, is_holdout
),

per_action as (
    select
        action_name,
        max(as_of_date) as as_of_date,
        min(case when window_end_date <= as_of_date then action_date end) as first_action_date,
        max(case when window_end_date <= as_of_date then action_date end) as last_action_date,
        sum(case when window_end_date > as_of_date then 1 else 0 end) as open_windows,
        min(case when window_end_date > as_of_date then window_end_date end) as next_window_end_date
    from windows
    group by action_name
),

groups as (
    select
        p.action_name,
        p.as_of_date,
        p.first_action_date,
        p.last_action_date,
        p.open_windows,
        p.next_window_end_date,
        coalesce(t.customers, 0) as n_t,
        coalesce(h.customers, 0) as n_h,
        cast(coalesce(t.purchasers, 0) as double) as purchasers_t,
        cast(coalesce(h.purchasers, 0) as double) as purchasers_h,
        coalesce(t.revenue_base, 0) as revenue_t,
        coalesce(h.revenue_base, 0) as revenue_h,
        coalesce(t.revenue_base_squares, 0) as squares_t,
        coalesce(h.revenue_base_squares, 0) as squares_h,
        coalesce(t.prior_buyers, 0) as prior_t,
        coalesce(h.prior_buyers, 0) as prior_h,
        cast(coalesce(t.retained, 0) as double) as retained_t,
        cast(coalesce(h.retained, 0) as double) as retained_h
    from per_action as p
    left join group_totals as t on t.action_name = p.action_name and not t.is_holdout
    left join group_totals as h on h.action_name = p.action_name and h.is_holdout
),

rates as (
    select
        *,
        case when n_t > 0 then purchasers_t / n_t end as purchase_rate_t,
        case when n_h > 0 then purchasers_h / n_h end as purchase_rate_h,
        case when n_t > 0 then revenue_t / n_t end as revenue_mean_t,
        case when n_h > 0 then revenue_h / n_h end as revenue_mean_h,
        -- sample variances of revenue per customer (n - 1); greatest() absorbs rounding below zero
        case when n_t > 1 then greatest(squares_t - revenue_t * revenue_t / n_t, 0) / (n_t - 1) end as revenue_var_t,
        case when n_h > 1 then greatest(squares_h - revenue_h * revenue_h / n_h, 0) / (n_h - 1) end as revenue_var_h,
        case when prior_t > 0 then retained_t / prior_t end as retention_rate_t,
        case when prior_h > 0 then retained_h / prior_h end as retention_rate_h
    from groups
),

-- squared standard errors of each group's estimate
variances as (
    select
        *,
        purchase_rate_t * (1 - purchase_rate_t) / n_t as purchase_rate_var_t,
        purchase_rate_h * (1 - purchase_rate_h) / n_h as purchase_rate_var_h,
        revenue_var_t / n_t as revenue_mean_var_t,
        revenue_var_h / n_h as revenue_mean_var_h,
        retention_rate_t * (1 - retention_rate_t) / prior_t as retention_rate_var_t,
        retention_rate_h * (1 - retention_rate_h) / prior_h as retention_rate_var_h
    from rates
),

lifts as (
    select
        *,
        purchase_rate_t - purchase_rate_h as purchase_lift,
        revenue_mean_t - revenue_mean_h as revenue_lift,
        retention_rate_t - retention_rate_h as retention_lift,
        -- half-widths of the intervals; none below two rows in a group
        case
            when n_t > 1 and n_h > 1 then {{ z }} * sqrt(purchase_rate_var_t + purchase_rate_var_h)
        end as purchase_margin,
        case
            when n_t > 1 and n_h > 1 then {{ z }} * sqrt(revenue_mean_var_t + revenue_mean_var_h)
        end as revenue_margin,
        case
            when prior_t > 1 and prior_h > 1 then {{ z }} * sqrt(retention_rate_var_t + retention_rate_var_h)
        end as retention_margin
    from variances
),

final as (
    select
        cast(action_name as varchar) as action_name,
        cast({{ lift_setting('window_days') }} as integer) as lift_window_days,
        cast(as_of_date as date) as as_of_date,
        cast(first_action_date as date) as first_action_date,
        cast(last_action_date as date) as last_action_date,
        cast(open_windows as bigint) as open_windows,
        cast(next_window_end_date as date) as next_window_end_date,
        cast(n_t as bigint) as treated_customers,
        cast(n_h as bigint) as holdout_customers,
        cast(purchase_rate_t as double) as treated_purchase_rate,
        cast(purchase_rate_h as double) as holdout_purchase_rate,
        cast(purchase_lift as double) as purchase_rate_lift,
        cast(purchase_lift - purchase_margin as double) as purchase_rate_lift_ci_low,
        cast(purchase_lift + purchase_margin as double) as purchase_rate_lift_ci_high,
        cast(revenue_mean_t as double) as treated_revenue_per_customer_base,
        cast(revenue_mean_h as double) as holdout_revenue_per_customer_base,
        cast(revenue_lift as double) as revenue_per_customer_lift_base,
        cast(revenue_lift - revenue_margin as double) as revenue_per_customer_lift_ci_low_base,
        cast(revenue_lift + revenue_margin as double) as revenue_per_customer_lift_ci_high_base,
        cast(prior_t as bigint) as treated_prior_buyers,
        cast(prior_h as bigint) as holdout_prior_buyers,
        cast(retention_rate_t as double) as treated_retention_rate,
        cast(retention_rate_h as double) as holdout_retention_rate,
        cast(retention_lift as double) as retention_rate_lift,
        cast(retention_lift - retention_margin as double) as retention_rate_lift_ci_low,
        cast(retention_lift + retention_margin as double) as retention_rate_lift_ci_high,
        cast({{ lift_setting('min_group_customers') }} as integer) as min_group_customers,
        cast(
            n_t < {{ lift_setting('min_group_customers') }} or n_h < {{ lift_setting('min_group_customers') }}
            as boolean
        ) as is_too_small,
        cast(
            case
                when n_t + n_h = 0 then 'no_closed_window'
                when n_h < {{ lift_setting('min_group_customers') }} then 'too_few_holdout'
                when n_t < {{ lift_setting('min_group_customers') }} then 'too_few_treated'
                else 'measured'
            end as varchar
        ) as lift_status
    from lifts
)

select * from final
