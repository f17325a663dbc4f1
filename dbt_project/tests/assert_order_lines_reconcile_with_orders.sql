-- Money reconciles: the order lines' net amounts add up to the orders' exactly (decimals as
-- delivered, each order in its own currency: the same amounts on both sides), and in the base currency up to
-- float rounding (1e-9 of the total: summing tens of millions of doubles in another order differs
-- in the last digits; a lost or doubled line does not).
select lines_net, orders_net, lines_base, orders_base
from (
    select
        (select coalesce(sum(net_amount), 0) from {{ ref('order_lines') }}) as lines_net,
        (select coalesce(sum(net_amount), 0) from {{ ref('orders') }}) as orders_net,
        (select coalesce(sum(net_amount_base), 0) from {{ ref('order_lines') }}) as lines_base,
        (select coalesce(sum(net_revenue_base), 0) from {{ ref('orders') }}) as orders_base
)
where lines_net <> orders_net
    or abs(lines_base - orders_base) > 0.01 + 1e-9 * abs(orders_base)
