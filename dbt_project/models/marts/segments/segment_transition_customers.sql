-- The customers who moved in each scoring run: one row per customer and family whose segment changed
-- in the run (a closed period followed by an open one), with the segment they left and the one they
-- entered. Joins to segment_transitions on (dagster_run_id, segment_family, from/to keys). No PII.

with history as (
    select * from {{ ref('segment_membership_history') }}
),

final as (
    select
        entered.opened_run_id as dagster_run_id,
        entered.valid_from as moved_at,
        entered.customer_id,
        entered.segment_family,
        left_.segment_key as from_segment_key,
        left_.segment_name as from_segment_name,
        entered.segment_key as to_segment_key,
        entered.segment_name as to_segment_name,
        entered.model_version,
        entered.definition_version
    from history as entered
    inner join history as left_
        on left_.customer_id = entered.customer_id
        and left_.segment_family = entered.segment_family
        and left_.closed_run_id = entered.opened_run_id
    where left_.segment_key <> entered.segment_key
)

select * from final
