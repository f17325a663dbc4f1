-- WALKING-SKELETON IDENTITY: records are the same person when their normalised e-mail is equal.
-- ERP accounts without an e-mail follow their (valid) CRM reference; support tickets follow their
-- ERP account, else their e-mail. The identity issue replaces this model with Splink-based
-- resolution; everything downstream only relies on its grain and columns.

with records as (
    select * from {{ ref('int_customer_records_unioned') }}
),

crm_keys as (
    select
        source_record_id as crm_customer_id,
        coalesce(email_normalized, 'crm:' || source_record_id) as group_key
    from records
    where source_system = 'crm'
),

erp_keys as (
    select
        r.source_record_id as erp_account_id,
        coalesce(r.email_normalized, c.group_key, 'erp:' || r.source_record_id) as group_key,
        case
            when r.email_normalized is not null then 'email'
            when c.group_key is not null then 'crm_reference'
            else 'unmatched'
        end as matched_on
    from records as r
    left join crm_keys as c on c.crm_customer_id = r.crm_customer_id
    where r.source_system = 'erp'
),

keyed as (
    select
        r.*,
        case r.source_system
            when 'crm' then coalesce(r.email_normalized, 'crm:' || r.source_record_id)
            when 'erp' then e.group_key
            else coalesce(a.group_key, r.email_normalized, 'support:' || r.source_record_id)
        end as group_key,
        case r.source_system
            when 'crm' then case when r.email_normalized is not null then 'email' else 'unmatched' end
            when 'erp' then e.matched_on
            else case
                when a.group_key is not null then 'erp_account'
                when r.email_normalized is not null then 'email'
                else 'unmatched'
            end
        end as matched_on
    from records as r
    left join erp_keys as e
        on r.source_system = 'erp' and e.erp_account_id = r.source_record_id
    left join erp_keys as a
        on r.source_system = 'support' and a.erp_account_id = r.erp_account_id
),

final as (
    select
        'cus_' || left(md5(group_key), 16) as customer_id,
        *
    from keyed
)

select * from final
