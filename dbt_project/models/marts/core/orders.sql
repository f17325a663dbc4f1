-- One row per order: header, customer, line totals in the order currency and in the base currency
-- (the project's `base_currency`, `*_base` columns). The base totals
-- are the order-currency totals times the order's rate (one rate per order), so lines are summed once.

with orders as (
    select * from {{ ref('int_orders_converted') }}
),

line_totals as (
    select
        order_id,
        count(*) as line_count,
        sum(quantity) as item_count,
        cast(sum(quantity * unit_price) as decimal(18, 2)) as gross_amount,
        sum(discount_amount) as discount_amount,
        cast(sum(quantity * unit_price - discount_amount) as decimal(18, 2)) as net_amount
    from {{ ref('stg_erp__order_lines') }}
    group by order_id
),

final as (
    select
        o.order_id,
        o.customer_id,
        o.erp_account_id,
        o.ordered_at,
        o.order_date,
        o.channel,
        o.currency,
        o.status,
        o.source_status,
        coalesce(t.line_count, 0) as line_count,
        coalesce(t.item_count, 0) as item_count,
        coalesce(t.gross_amount, 0) as gross_amount,
        coalesce(t.discount_amount, 0) as discount_amount,
        coalesce(t.net_amount, 0) as net_amount,
        -- freight and tax as the order header states them (null: not delivered); not part of net revenue
        o.shipping_amount,
        o.tax_amount,
        o.fx_rate_to_base,
        coalesce(cast(t.gross_amount as double) * o.fx_rate_to_base, 0) as gross_revenue_base,
        coalesce(cast(t.discount_amount as double) * o.fx_rate_to_base, 0) as discount_base,
        coalesce(cast(t.net_amount as double) * o.fx_rate_to_base, 0) as net_revenue_base,
        cast(o.shipping_amount as double) * o.fx_rate_to_base as shipping_base,
        cast(o.tax_amount as double) * o.fx_rate_to_base as tax_base,
        coalesce(t.discount_amount, 0) > 0 as is_discounted
    from orders as o
    left join line_totals as t on t.order_id = o.order_id
)

select * from final
