-- Money reconciles: the order lines' net amounts add up to the orders' exactly (decimals as
-- delivered, each order in its own currency: the same amounts on both sides), and in EUR up to
-- float rounding (1e-9 of the total: summing tens of millions of doubles in another order differs
-- in the last digits; a lost or doubled line does not).
select lines_net, orders_net, lines_eur, orders_eur
from (
    select
        (select coalesce(sum(net_amount), 0) from {{ ref('order_lines') }}) as lines_net,
        (select coalesce(sum(net_amount), 0) from {{ ref('orders') }}) as orders_net,
        (select coalesce(sum(net_amount_eur), 0) from {{ ref('order_lines') }}) as lines_eur,
        (select coalesce(sum(net_revenue_eur), 0) from {{ ref('orders') }}) as orders_eur
)
where lines_net <> orders_net
    or abs(lines_eur - orders_eur) > 0.01 + 1e-9 * abs(orders_eur)
