-- One row per order line, with amounts in the order currency and in the base currency; the
-- order's customer, date, status and rate come from marts.orders.

with lines as (
    select * from {{ ref('stg_erp__order_lines') }}
),

orders as (
    select order_id, customer_id, order_date, status, currency, fx_rate_to_base from {{ ref('orders') }}
),

final as (
    select
        l.order_line_id,
        l.order_id,
        o.customer_id,
        o.order_date,
        o.status as order_status,
        l.product_id,
        l.category,
        l.quantity,
        l.unit_price,
        o.currency,
        cast(l.quantity * l.unit_price as decimal(18, 2)) as gross_amount,
        l.discount_amount,
        cast(l.quantity * l.unit_price - l.discount_amount as decimal(18, 2)) as net_amount,
        o.fx_rate_to_base,
        cast(l.quantity * l.unit_price as double) * o.fx_rate_to_base as gross_amount_base,
        cast(l.discount_amount as double) * o.fx_rate_to_base as discount_amount_base,
        cast(l.quantity * l.unit_price - l.discount_amount as double) * o.fx_rate_to_base as net_amount_base
    from lines as l
    inner join orders as o on o.order_id = l.order_id
)

select * from final
