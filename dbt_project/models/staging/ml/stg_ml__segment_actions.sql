-- ml.segment_actions, the append-only outbox of playbook actions the scoring asset emits.
-- The table is no asset of its own: the hint below makes Dagster build this view after the scoring
-- asset that writes it.
-- depends_on: {{ source('ml', 'customer_segment_assignments') }}

with source as (
    select * from {{ source('ml', 'segment_actions') }}
),

renamed as (
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
    from source
)

select * from renamed
