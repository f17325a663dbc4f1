-- One row per alert: a customer above the configured revenue crossed a configured segment edge (e.g.
-- Loyal -> At Risk) in a scoring run; with the owner who must act and the due date. No PII.

with alerts as (
    select * from {{ ref('stg_ml__segment_alerts') }}
),

final as (
    select
        alert_id,
        alert_name,
        playbook_version,
        customer_id,
        segment_family,
        from_segment_key,
        to_segment_key,
        revenue_base,
        owner,
        due_date,
        created_at,
        created_run_id
    from alerts
)

select * from final
