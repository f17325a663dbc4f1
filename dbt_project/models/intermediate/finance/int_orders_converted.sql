-- One row per order with its customer and the exchange rate to the base currency: the latest rate
-- on or before the order date (an ASOF join, one pass over orders and rates).
-- A view: only marts.orders reads it (order_lines take rate and customer from marts.orders), so the
-- join runs once per build instead of being written out as another copy of every order.
{{ config(materialized='view') }}

with orders as (
    select * from {{ ref('stg_erp__orders') }}
),

rates as (
    select rate_date, currency, rate_to_eur from {{ ref('stg_erp__fx_rates') }}
),

accounts as (
    select source_record_id as erp_account_id, customer_id
    from {{ ref('int_customer_records_resolved') }}
    where source_system = 'erp'
),

final as (
    select
        o.order_id,
        a.customer_id,
        o.erp_account_id,
        o.ordered_at,
        o.order_date,
        o.channel,
        o.currency,
        o.status,
        case
            when o.currency = '{{ var("base_currency") }}' then 1.0
            else r.rate_to_eur
        end as fx_rate_to_eur
    from orders as o
    left join accounts as a on a.erp_account_id = o.erp_account_id
    asof left join rates as r
        on r.currency = o.currency and o.order_date >= r.rate_date
)

select * from final
