-- One row per source record that names a person, with the customer it resolved to.

with resolved as (
    select * from {{ ref('int_customer_records_resolved') }}
),

final as (
    select
        customer_id,
        source_system,
        source_record_id,
        matched_on,
        record_created_at
    from resolved
)

select * from final
