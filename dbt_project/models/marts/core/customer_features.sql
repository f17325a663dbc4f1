-- One row per customer: behavioural features as of the reference date (var as_of_date, else the
-- date of the latest order). Only orders, tickets and events up to that date are used.

with as_of as (
    select {{ as_of_date() }} as as_of_date
),

customers as (
    select customer_id, first_seen_at, has_profiling_consent from {{ ref('customers') }}
),

orders as (
    select o.*
    from {{ ref('orders') }} as o
    cross join as_of
    where o.customer_id is not null and o.order_date <= as_of.as_of_date
),

order_features as (
    select
        o.customer_id,
        count(*) filter (where o.status = 'completed') as frequency,
        sum(o.net_revenue_eur) filter (where o.status = 'completed') as monetary_eur,
        sum(o.gross_revenue_eur) filter (where o.status = 'completed') as gross_revenue_eur,
        sum(o.discount_eur) filter (where o.status = 'completed') as discount_eur,
        min(o.ordered_at) filter (where o.status = 'completed') as first_order_at,
        max(o.ordered_at) filter (where o.status = 'completed') as last_order_at,
        count(*) filter (where o.status = 'completed' and o.order_date > a.as_of_date - interval 90 day) as orders_last_90d,
        count(*) filter (
            where o.status = 'completed'
              and o.order_date <= a.as_of_date - interval 90 day
              and o.order_date > a.as_of_date - interval 180 day
        ) as orders_prev_90d,
        count(*) filter (where o.status = 'returned') as returned_orders,
        count(*) filter (where o.status in ('completed', 'returned')) as kept_or_returned_orders,
        count(*) as all_orders,
        count(*) filter (where o.channel = 'web') as web_orders,
        count(*) filter (where o.channel = 'app') as app_orders,
        count(*) filter (where o.channel = 'store') as store_orders,
        count(*) filter (where o.channel = 'phone') as phone_orders
    from orders as o
    cross join as_of as a
    group by o.customer_id
),

category_features as (
    select l.customer_id, count(distinct l.category) as category_breadth
    from {{ ref('order_lines') }} as l
    cross join as_of
    where l.customer_id is not null and l.order_status = 'completed' and l.order_date <= as_of.as_of_date
    group by l.customer_id
),

ticket_features as (
    select
        t.customer_id,
        count(*) as ticket_count,
        avg(t.csat_score) as avg_csat,
        avg(t.resolution_hours) as avg_resolution_hours
    from {{ ref('support_tickets') }} as t
    cross join as_of
    where t.customer_id is not null and cast(t.created_at as date) <= as_of.as_of_date
    group by t.customer_id
),

event_customers as (
    -- identified events: the device (anonymous_id) is a record identity resolution placed
    select r.customer_id, e.event_id
    from {{ ref('stg_events__events') }} as e
    inner join {{ ref('int_customer_records_resolved') }} as r
        on r.source_system = 'events' and r.source_record_id = e.anonymous_id
    cross join as_of
    where cast(e.occurred_at as date) <= as_of.as_of_date
),

event_features as (
    select customer_id, count(distinct event_id) as event_count
    from event_customers
    group by customer_id
),

final as (
    select
        c.customer_id,
        a.as_of_date,
        date_diff('day', cast(f.last_order_at as date), a.as_of_date) as recency_days,
        coalesce(f.frequency, 0) as frequency,
        coalesce(f.monetary_eur, 0) as monetary_eur,
        f.monetary_eur / nullif(f.frequency, 0) as aov_eur,
        greatest(date_diff('day', cast(c.first_seen_at as date), a.as_of_date), 0) as tenure_days,
        f.first_order_at,
        f.last_order_at,
        coalesce(f.orders_last_90d, 0) as orders_last_90d,
        coalesce(f.orders_prev_90d, 0) as orders_prev_90d,
        coalesce(f.discount_eur / nullif(f.gross_revenue_eur, 0), 0) as discount_share,
        f.returned_orders / nullif(f.kept_or_returned_orders, 0) as return_rate,
        coalesce(cf.category_breadth, 0) as category_breadth,
        coalesce(f.web_orders / nullif(f.all_orders, 0), 0) as share_web,
        coalesce(f.app_orders / nullif(f.all_orders, 0), 0) as share_app,
        coalesce(f.store_orders / nullif(f.all_orders, 0), 0) as share_store,
        coalesce(f.phone_orders / nullif(f.all_orders, 0), 0) as share_phone,
        coalesce(t.ticket_count, 0) as ticket_count,
        t.avg_csat,
        t.avg_resolution_hours,
        coalesce(e.event_count, 0) as event_count,
        c.has_profiling_consent
    from customers as c
    cross join as_of as a
    left join order_features as f on f.customer_id = c.customer_id
    left join category_features as cf on cf.customer_id = c.customer_id
    left join ticket_features as t on t.customer_id = c.customer_id
    left join event_features as e on e.customer_id = c.customer_id
)

select * from final
