-- A customer is in at most one segment per family at any instant: its SCD2 periods never overlap and
-- at most one is open. Returns the offending rows.
with periods as (
    select
        customer_id,
        segment_family,
        valid_from,
        valid_to,
        lead(valid_from) over (partition by customer_id, segment_family order by valid_from) as next_valid_from,
        count(*) filter (where is_current) over (partition by customer_id, segment_family) as open_periods
    from {{ ref('segment_membership_history') }}
)

select *
from periods
where open_periods > 1
    or (next_valid_from is not null and (valid_to is null or valid_to > next_valid_from))
