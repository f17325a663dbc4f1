-- One row per order: header, customer, line totals in the order currency and in EUR.

with orders as (
    select * from {{ ref('int_orders_converted') }}
),

line_totals as (
    select
        order_id,
        count(*) as line_count,
        sum(quantity) as item_count,
        sum(gross_amount) as gross_amount,
        sum(discount_amount) as discount_amount,
        sum(net_amount) as net_amount,
        sum(gross_amount_eur) as gross_revenue_eur,
        sum(discount_amount_eur) as discount_eur,
        sum(net_amount_eur) as net_revenue_eur
    from {{ ref('order_lines') }}
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
        coalesce(t.line_count, 0) as line_count,
        coalesce(t.item_count, 0) as item_count,
        coalesce(t.gross_amount, 0) as gross_amount,
        coalesce(t.discount_amount, 0) as discount_amount,
        coalesce(t.net_amount, 0) as net_amount,
        o.fx_rate_to_eur,
        coalesce(t.gross_revenue_eur, 0) as gross_revenue_eur,
        coalesce(t.discount_eur, 0) as discount_eur,
        coalesce(t.net_revenue_eur, 0) as net_revenue_eur,
        coalesce(t.discount_amount, 0) > 0 as is_discounted
    from orders as o
    left join line_totals as t on t.order_id = o.order_id
)

select * from final
