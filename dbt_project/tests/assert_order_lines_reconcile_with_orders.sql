-- Money reconciles: the net amount of all order lines in EUR equals the orders' net revenue.
select lines_eur, orders_eur
from (
    select
        (select coalesce(sum(net_amount_eur), 0) from {{ ref('order_lines') }}) as lines_eur,
        (select coalesce(sum(net_revenue_eur), 0) from {{ ref('orders') }}) as orders_eur
)
where abs(lines_eur - orders_eur) > 0.01
