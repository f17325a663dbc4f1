-- identity.customer_source_records is written by the Dagster identity asset (rules, Splink,
-- guardrails, stable ids); this view is its only reader in dbt.

with source as (
    select * from {{ source('identity', 'customer_source_records') }}
),

renamed as (
    select
        record_id,
        source_system,
        source_record_id,
        customer_id,
        matched_on,
        match_probability,
        cluster_size,
        run_id,
        resolved_at
    from source
)

select * from renamed
