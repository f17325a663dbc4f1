-- ml.segment_alerts, the account-owner alerts the scoring asset emits.
-- The table is no asset of its own: the hint below makes Dagster build this view after the scoring
-- asset that writes it.
-- depends_on: {{ source('ml', 'customer_segment_assignments') }}

with source as (
    select * from {{ source('ml', 'segment_alerts') }}
),

renamed as (
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
    from source
)

select * from renamed
