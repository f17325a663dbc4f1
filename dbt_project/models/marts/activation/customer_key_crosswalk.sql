-- One row per customer: the keys of the customer's records in the user's own systems, so segments and
-- actions can be written back where operations work (reverse ETL into the CRM). The primary record of a
-- system is its best-scored record for the golden record (survivorship score, then record id).
-- RESTRICTED: source keys re-identify customers in those systems. Never part of the BI copy; published
-- apart (serving/restricted_activation.duckdb, owner-only file permissions) for activation consumers.

with records as (
    select customer_id, source_system, source_record_id, survivorship_score, record_id
    from {{ ref('int_customer_records_resolved') }}
),

final as (
    select
        customer_id,
        arg_max(source_record_id, (survivorship_score, record_id)) filter (where source_system = 'crm')
            as crm_customer_id,
        arg_max(source_record_id, (survivorship_score, record_id)) filter (where source_system = 'erp')
            as erp_account_id,
        list_sort(list(source_record_id) filter (where source_system = 'crm')) as crm_customer_ids,
        list_sort(list(source_record_id) filter (where source_system = 'erp')) as erp_account_ids,
        count(*) as source_record_count
    from records
    group by customer_id
)

select * from final
