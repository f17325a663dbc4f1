-- The transition matrix of every scoring run after the first: per family, from which segment (before
-- the run) to which segment (after it) customers went, with counts - the diagonal (stayed) included.
-- Customers new in the run come from '(new)', customers that left (e.g. an id retired by a merge) go
-- to '(gone)'. Computed from the SCD2 history at the instants of consecutive scoring runs.
-- Incremental: later runs open and close periods only at their own, later instants, so the history at
-- a run's two instants - and its matrix - is final once built. A build computes only the runs not in the
-- table yet (or built against another previous run), delete+insert on dagster_run_id; --full-refresh
-- recomputes every run.

{#- on_schema_change 'fail': the contract fixes the columns (a contracted incremental model must not
    ignore or sync a schema change); a change of columns needs --full-refresh. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='dagster_run_id',
    on_schema_change='fail'
) }}

with all_runs as (
    select
        dagster_run_id,
        scored_at,
        lag(scored_at) over (order by scored_at) as previous_scored_at,
        lag(dagster_run_id) over (order by scored_at) as previous_run_id
    from {{ ref('stg_ml__segment_scoring_runs') }}
),

runs as (
    -- the runs to compute: all after the first, less those already built against the same previous run
    select r.*
    from all_runs as r
    where r.previous_scored_at is not null
    {% if is_incremental() %}
      and not exists (
          select 1 from {{ this }} as t
          where t.dagster_run_id = r.dagster_run_id and t.previous_run_id = r.previous_run_id
      )
    {% endif %}
),

history as (
    select * from {{ ref('segment_membership_history') }}
),

instants as (
    -- each run at two instants: 'before' (the previous run's) and 'after' (its own)
    select dagster_run_id, 'before' as side, previous_scored_at as instant from runs
    union all
    select dagster_run_id, 'after' as side, scored_at as instant from runs
),

memberships as (
    -- the membership open at each instant (the range join, written once)
    select i.dagster_run_id, i.side, h.customer_id, h.segment_family, h.segment_key, h.segment_name
    from instants as i
    inner join history as h
        on h.valid_from <= i.instant
        and (h.valid_to is null or h.valid_to > i.instant)
),

before_run as (
    select * from memberships
    where side = 'before'
),

after_run as (
    select * from memberships
    where side = 'after'
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
