-- Segment families are complete: every customer with a segment in one family has exactly one row in
-- every family (a customer missing from a family, or placed twice in it, is returned).
with families as (
    select distinct segment_family from {{ ref('customer_segments') }}
),

customers as (
    select distinct customer_id from {{ ref('customer_segments') }}
),

rows_per_family as (
    select customer_id, segment_family, count(*) as n
    from {{ ref('customer_segments') }}
    group by 1, 2
)

select c.customer_id, f.segment_family, coalesce(r.n, 0) as n
from customers as c
cross join families as f
left join rows_per_family as r using (customer_id, segment_family)
where coalesce(r.n, 0) <> 1
