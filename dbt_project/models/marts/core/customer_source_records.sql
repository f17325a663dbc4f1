-- One row per source record that names a person (CRM customer, ERP account, support requester,
-- identified event device), with the customer it resolved to and the link that placed it.

with resolved as (
    select * from {{ ref('int_customer_records_resolved') }}
),

final as (
    select
        customer_id,
        source_system,
        source_record_id,
        matched_on,
        match_probability,
        record_created_at
    from resolved
)

select * from final
