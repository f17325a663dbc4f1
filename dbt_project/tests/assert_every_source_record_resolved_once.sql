-- Every CRM customer and ERP account in staging, and every other candidate record (support
-- requesters, identified devices), resolves to exactly one customer: identity loses no one.
with expected as (
    select 'crm' as source_system, crm_customer_id as source_record_id from {{ ref('stg_crm__customers') }}
    union
    select 'erp' as source_system, erp_account_id as source_record_id from {{ ref('stg_erp__accounts') }}
    union
    select source_system, source_record_id from {{ ref('int_customer_records_unioned') }}
),

resolved as (
    select source_system, source_record_id, count(*) as n
    from {{ ref('customer_source_records') }}
    group by 1, 2
)

select e.source_system, e.source_record_id, coalesce(r.n, 0) as n
from expected as e
left join resolved as r using (source_system, source_record_id)
where coalesce(r.n, 0) <> 1
