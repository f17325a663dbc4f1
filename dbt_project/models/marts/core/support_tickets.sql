-- One row per support ticket, linked to its customer where the requester could be resolved.
-- (noqa: LT05: sqlfluff counts the rendered dbt.datediff into the line, see customer_features.sql.)

with tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

resolved as (
    select source_record_id as ticket_id, customer_id
    from {{ ref('int_customer_records_resolved') }}
    where source_system = 'support'
),

final as (
    select
        t.ticket_id,
        r.customer_id,
        r.customer_id is null as is_unlinked,
        t.created_at,
        t.resolved_at,
        {{ dbt.datediff('t.created_at', 't.resolved_at', 'minute') }} / 60.0 as resolution_hours,  -- noqa: LT05
        t.channel,
        t.category,
        t.priority,
        t.csat_score
    from tickets as t
    left join resolved as r on r.ticket_id = t.ticket_id
)

select * from final
