-- One row per support ticket, linked to its customer where the requester could be resolved.

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
        date_diff('minute', t.created_at, t.resolved_at) / 60.0 as resolution_hours,
        t.channel,
        t.category,
        t.priority,
        t.csat_score
    from tickets as t
    left join resolved as r on r.ticket_id = t.ticket_id
)

select * from final
