-- The activation outbox for reverse-ETL consumers: every playbook action of segments.segment_actions with
-- the destination keys of its customer (the primary CRM customer id and ERP account id, from
-- customer_key_crosswalk), so a consumer writes the action to the right record of the user's CRM.
-- RESTRICTED like the crosswalk: published apart from the BI copy (serving/restricted_activation.duckdb).

with actions as (
    select * from {{ ref('segment_actions') }}
),

keys as (
    select customer_id, crm_customer_id, erp_account_id from {{ ref('customer_key_crosswalk') }}
),

final as (
    select
        a.*,
        k.crm_customer_id,
        k.erp_account_id,
        case
            when k.crm_customer_id is not null then 'crm'
            when k.erp_account_id is not null then 'erp'
        end as destination_system
    from actions as a
    left join keys as k using (customer_id)
)

select * from final
