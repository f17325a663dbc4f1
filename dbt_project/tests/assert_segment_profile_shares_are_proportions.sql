-- Segment profile shares are proportions: each lies in [0, 1] and the shares of a family in a run sum
-- to 1 (the family's customers are split, not sampled).
with profiles as (
    select * from {{ ref('segment_profiles') }}
),

out_of_range as (
    select dagster_run_id, segment_family, segment_key, share
    from profiles
    where share < 0 or share > 1
),

not_summing_to_one as (
    select dagster_run_id, segment_family, null as segment_key, sum(share) as share
    from profiles
    group by 1, 2
    having abs(sum(share) - 1) > 1e-9
)

select * from out_of_range
union all
select * from not_summing_to_one
