-- The outbox for reverse-ETL consumers: one row per playbook action, appended once (action_id is the
-- idempotency key: playbook, customer, segment and start of the membership period). Only customers with a
-- lawful basis for the action's purpose appear (lawful_basis: consent, or the contract or legitimate interest
-- the project configures); is_holdout rows are the control group and must not be sent.
-- A consumer reads the rows of the runs it has not processed yet (created_run_id / created_at). No PII.

with actions as (
    select * from {{ ref('stg_ml__segment_actions') }}
),

final as (
    select
        action_id,
        action_name,
        playbook_version,
        customer_id,
        segment_family,
        segment_key,
        trigger_kind,
        from_segment_key,
        channel,
        purpose,
        lawful_basis,
        template_key,
        owner,
        is_holdout,
        due_at,
        created_at,
        created_run_id
    from actions
)

select * from final
