-- The transition matrix of every scoring run after the first: per family, from which segment (before
-- the run) to which segment (after it) customers went, with counts - the diagonal (stayed) included.
-- Customers new in the run come from '(new)', customers that left (e.g. an id retired by a merge) go
-- to '(gone)'. Computed from the SCD2 history at the instants of consecutive scoring runs.
-- depends_on: {{ source('ml', 'customer_segment_assignments') }}

with runs as (
    select
        dagster_run_id,
        scored_at,
        lag(scored_at) over (order by scored_at) as previous_scored_at,
        lag(dagster_run_id) over (order by scored_at) as previous_run_id
    from {{ source('ml', 'segment_scoring_runs') }}
),

history as (
    select * from {{ ref('segment_membership_history') }}
),

before_run as (
    -- membership just before each run: open at the previous run's instant
    select r.dagster_run_id, h.customer_id, h.segment_family, h.segment_key, h.segment_name
    from runs as r
    inner join history as h
        on h.valid_from <= r.previous_scored_at
       and (h.valid_to is null or h.valid_to > r.previous_scored_at)
    where r.previous_scored_at is not null
),

after_run as (
    select r.dagster_run_id, h.customer_id, h.segment_family, h.segment_key, h.segment_name
    from runs as r
    inner join history as h
        on h.valid_from <= r.scored_at
       and (h.valid_to is null or h.valid_to > r.scored_at)
    where r.previous_scored_at is not null
),

moves as (
    select
        coalesce(a.dagster_run_id, b.dagster_run_id) as dagster_run_id,
        coalesce(a.segment_family, b.segment_family) as segment_family,
        coalesce(b.segment_key, '(new)') as from_segment_key,
        coalesce(b.segment_name, '(new)') as from_segment_name,
        coalesce(a.segment_key, '(gone)') as to_segment_key,
        coalesce(a.segment_name, '(gone)') as to_segment_name
    from before_run as b
    full outer join after_run as a
        on a.dagster_run_id = b.dagster_run_id
       and a.customer_id = b.customer_id
       and a.segment_family = b.segment_family
),

final as (
    select
        m.dagster_run_id,
        r.scored_at,
        r.previous_run_id,
        m.segment_family,
        m.from_segment_key,
        m.from_segment_name,
        m.to_segment_key,
        m.to_segment_name,
        m.from_segment_key <> m.to_segment_key as is_move,
        count(*) as customers
    from moves as m
    inner join runs as r using (dagster_run_id)
    group by all
)

select * from final
