{#- The customer features, one row per customer per as_of_date, for the dates `as_of_dates` (a query with an
    `as_of_date` column: one row for the current snapshot, several for training snapshots). Value, behaviour,
    technographic, support, feedback and geography features computed only from what was known on each date:
    orders, lines, tickets, reviews and events after it are ignored and customers first seen after it are left
    out, so a model trained on a past date sees what it would have seen then. One definition for every
    snapshot: `customer_features` (today) and `customer_feature_snapshots` (training dates) both call it.
    Every column is registered (description, owner, PII class, allowed purposes) in _core__models.yml. -#}
{% macro customer_features_as_of(as_of_dates) %}
with {{ customer_feature_parts(as_of_dates) }},

{{ customer_features_from_parts() }}
{% endmacro %}


{#- The aggregates of each source per customer and as_of_date, as CTEs (a comma-separated list, without `with`):
    as_of, customers (first seen by the date), order_features, category_features, ticket_features,
    review_features, event_features, and the inputs they read. -#}
{% macro customer_feature_parts(as_of_dates) %}
as_of as (
    {{ as_of_dates }}
),

customers as (
    select c.customer_id, a.as_of_date, c.first_seen_at, c.country, c.has_profiling_consent, c.profiling_basis
    from {{ ref('customers') }} as c
    cross join as_of as a
    where cast(c.first_seen_at as date) <= a.as_of_date
),

orders as (
    select o.*, a.as_of_date
    from {{ ref('orders') }} as o
    cross join as_of as a
    where o.customer_id is not null and o.order_date <= a.as_of_date
),

order_features as (
    select
        o.customer_id,
        o.as_of_date,
        count(*) filter (where o.status = 'completed') as frequency,
        count(*) filter (where o.status = 'completed' and o.line_count = 0) as lineless_orders,
        -- money summed as decimals: exact, so independent of the order DuckDB's threads add the rows in (a
        -- double sum is not): a rebuild of the same data gives the same features and training-data digest
        cast(sum(cast(o.net_revenue_base as decimal(38, 6))) filter (where o.status = 'completed') as double)
            as monetary_base,
        cast(sum(cast(o.gross_revenue_base as decimal(38, 6))) filter (where o.status = 'completed') as double)
            as gross_revenue_base,
        cast(sum(cast(o.discount_base as decimal(38, 6))) filter (where o.status = 'completed') as double)
            as discount_base,
        count(*) filter (where o.status = 'completed' and o.is_discounted) as discounted_orders,
        sum(o.item_count) filter (where o.status = 'completed') as items,
        min(o.order_date) filter (where o.status = 'completed') as first_order_date,
        max(o.order_date) filter (where o.status = 'completed') as last_order_date,
        count(*) filter (
            where o.status = 'completed' and o.order_date > {{ dbt.dateadd('day', -90, 'o.as_of_date') }}
        ) as orders_last_90d,
        count(*) filter (
            where o.status = 'completed'
            and o.order_date <= {{ dbt.dateadd('day', -90, 'o.as_of_date') }}
            and o.order_date > {{ dbt.dateadd('day', -180, 'o.as_of_date') }}
        ) as orders_prev_90d,
        count(*) filter (where o.status = 'returned') as returned_orders,
        count(*) filter (where o.status in ('completed', 'returned')) as kept_or_returned_orders,
        count(*) as all_orders,
        count(*) filter (where o.channel = 'web') as web_orders,
        count(*) filter (where o.channel = 'app') as app_orders,
        count(*) filter (where o.channel = 'store') as store_orders,
        count(*) filter (where o.channel = 'phone') as phone_orders
    from orders as o
    group by o.customer_id, o.as_of_date
),

-- the first completed order of each category a customer bought, then the categories first bought by each
-- date: distinct counting over order lines crossed with the dates held every line once per date in memory
category_first as (
    select l.customer_id, l.category, min(l.order_date) as first_order_date
    from {{ ref('order_lines') }} as l
    where l.customer_id is not null and l.order_status = 'completed' and l.category is not null
    group by l.customer_id, l.category
),

category_features as (
    select cf.customer_id, a.as_of_date, count(*) as category_breadth
    from category_first as cf
    inner join as_of as a on cf.first_order_date <= a.as_of_date
    group by cf.customer_id, a.as_of_date
),

ticket_features as (
    select
        t.customer_id,
        a.as_of_date,
        count(*) as ticket_count,
        avg(t.csat_score) as avg_csat,
        cast(avg(cast(t.resolution_hours as decimal(38, 6))) as double) as avg_resolution_hours  -- exact, as money
    from {{ ref('support_tickets') }} as t
    cross join as_of as a
    where t.customer_id is not null and cast(t.created_at as date) <= a.as_of_date
    group by t.customer_id, a.as_of_date
),

-- reviews of the customer's orders (a review that covers several orders counts once per order)
review_features as (
    select
        o.customer_id,
        o.as_of_date,
        count(*) as review_count,
        avg(rv.score) as avg_review_score,
        count(*) filter (where rv.score <= 2) as low_review_count
    from {{ ref('stg_feedback__reviews') }} as rv
    inner join orders as o on o.order_id = rv.order_id
    where cast(rv.created_at as date) <= o.as_of_date
    group by o.customer_id, o.as_of_date
),

-- identified events per customer and day first (the device, anonymous_id, is a record identity resolution
-- placed), then summed up to each date: events are the largest source, crossed with the dates only as days
event_days as (
    select
        r.customer_id,
        cast(e.occurred_at as date) as event_date,
        count(*) as event_count,
        count(*) filter (where e.channel = 'app') as app_events,
        count(*) filter (where e.device = 'mobile') as mobile_events
    from {{ ref('stg_events__events') }} as e
    inner join {{ ref('int_customer_records_resolved') }} as r
        on r.source_system = 'events' and r.source_record_id = e.anonymous_id
    group by r.customer_id, cast(e.occurred_at as date)
),

event_features as (
    select
        d.customer_id,
        a.as_of_date,
        cast(sum(d.event_count) as bigint) as event_count,
        max(d.event_date) as last_event_date,
        cast(sum(d.app_events) as bigint) as app_events,
        cast(sum(d.mobile_events) as bigint) as mobile_events
    from event_days as d
    inner join as_of as a on d.event_date <= a.as_of_date
    group by d.customer_id, a.as_of_date
)
{% endmacro %}


{#- The customer features from the parts' CTEs or tables of the same names. -#}
{% macro customer_features_from_parts() %}
final as (
    select
        c.customer_id,
        c.as_of_date,
        -- value
        {{ dbt.datediff('f.last_order_date', 'c.as_of_date', 'day') }}
            as recency_days,
        coalesce(f.frequency, 0) as frequency,
        coalesce(f.lineless_orders, 0) as lineless_order_count,
        coalesce(f.monetary_base, 0) as monetary_base,
        f.monetary_base / nullif(f.frequency, 0) as aov_base,
        greatest({{ dbt.datediff('cast(c.first_seen_at as date)', 'c.as_of_date', 'day') }}, 0) as tenure_days,
        {{ dbt.datediff('f.first_order_date', 'c.as_of_date', 'day') }}
            as days_since_first_order,
        -- completed orders per year since the first one (at least 30 days of exposure, so a first
        -- order yesterday does not read as 365 orders a year)
        f.frequency * 365.0 / (
            {{ dbt.datediff('f.first_order_date', 'c.as_of_date', 'day') }} + 30
        ) as order_rate_per_year,
        f.first_order_date,
        f.last_order_date,
        -- behaviour
        coalesce(f.orders_last_90d, 0) as orders_last_90d,
        coalesce(f.orders_prev_90d, 0) as orders_prev_90d,
        coalesce(f.orders_last_90d, 0) - coalesce(f.orders_prev_90d, 0) as frequency_trend,
        coalesce(cf.category_breadth, 0) as category_breadth,
        f.items / nullif(f.frequency, 0) as items_per_order,
        coalesce(f.discount_base / nullif(f.gross_revenue_base, 0), 0) as discount_share,
        f.discounted_orders / nullif(f.frequency, 0) as discounted_order_share,
        f.returned_orders / nullif(f.kept_or_returned_orders, 0) as return_rate,
        -- technographic
        coalesce(f.web_orders / nullif(f.all_orders, 0), 0) as share_web,
        coalesce(f.app_orders / nullif(f.all_orders, 0), 0) as share_app,
        coalesce(f.store_orders / nullif(f.all_orders, 0), 0) as share_store,
        coalesce(f.phone_orders / nullif(f.all_orders, 0), 0) as share_phone,
        coalesce(e.event_count, 0) as event_count,
        e.app_events / nullif(e.event_count, 0) as event_app_share,
        e.mobile_events / nullif(e.event_count, 0) as event_mobile_share,
        -- days since the last sign of life: a completed order or an identified visit
        {{ dbt.datediff('greatest(f.last_order_date, e.last_event_date)', 'c.as_of_date', 'day') }}
            as last_activity_days,
        -- support
        coalesce(t.ticket_count, 0) as ticket_count,
        coalesce(t.ticket_count, 0) * 365.0 / greatest(
            {{ dbt.datediff('cast(c.first_seen_at as date)', 'c.as_of_date', 'day') }}, 365
        ) as tickets_per_year,
        t.avg_csat,
        t.avg_resolution_hours,
        -- feedback
        coalesce(rv.review_count, 0) as review_count,
        rv.avg_review_score,
        coalesce(rv.low_review_count, 0) as low_review_count,
        -- geography
        c.country,
        -- governance
        c.has_profiling_consent,
        c.profiling_basis
    from customers as c
    left join order_features as f on f.customer_id = c.customer_id and f.as_of_date = c.as_of_date
    left join category_features as cf on cf.customer_id = c.customer_id and cf.as_of_date = c.as_of_date
    left join ticket_features as t on t.customer_id = c.customer_id and t.as_of_date = c.as_of_date
    left join event_features as e on e.customer_id = c.customer_id and e.as_of_date = c.as_of_date
    left join review_features as rv on rv.customer_id = c.customer_id and rv.as_of_date = c.as_of_date
)

select * from final
{% endmacro %}


{#- The parts the final join reads, each a table once staged. -#}
{% macro customer_feature_part_names() %}
    {{ return(['customers', 'order_features', 'category_features', 'ticket_features', 'review_features',
               'event_features']) }}
{% endmacro %}


{#- The table a part is staged in for the current model: `<schema>.<model>__<part>`. -#}
{% macro staged_feature_part(part) -%}
    {{ this.schema }}.{{ this.identifier }}__{{ part }}
{%- endmacro %}


{#- The customer features of several dates in separate statements (a pre-hook stages each part as a table, the
    model joins the tables, a post-hook drops them): in one statement, the hash tables of all five aggregates
    are alive together and at 1M persons x 4 dates outgrow the default memory limit (out of memory at 2000MB,
    and at 4000MB with two threads); staged, every statement fits in 1000MB. A unit test runs the parts as CTEs
    over its fixtures (hooks do not run there). -#}
{% macro stage_customer_feature_parts(as_of_dates) %}
    {%- if model.resource_type != 'unit_test' -%}
        {%- for part in customer_feature_part_names() %}
create or replace table {{ staged_feature_part(part) }} as
with {{ customer_feature_parts(as_of_dates) }}
select * from {{ part }};
        {%- endfor %}
    {%- endif -%}
{% endmacro %}

{% macro drop_staged_customer_feature_parts() %}
    {%- if model.resource_type != 'unit_test' -%}
        {%- for part in customer_feature_part_names() %}
drop table if exists {{ staged_feature_part(part) }};
        {%- endfor %}
    {%- endif -%}
{% endmacro %}

{% macro customer_features_staged(as_of_dates) %}
    {%- if model.resource_type == 'unit_test' -%}
{{ customer_features_as_of(as_of_dates) }}
    {%- else -%}
with
        {%- for part in customer_feature_part_names() %}
{{ part }} as (select * from {{ staged_feature_part(part) }}),
        {%- endfor %}

{{ customer_features_from_parts() }}
    {%- endif -%}
{% endmacro %}
