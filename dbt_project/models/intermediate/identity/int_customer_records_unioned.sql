-- One row per source record that names a person: CRM customers, ERP accounts, support requesters
-- (tickets carrying an e-mail, a phone or an account) and identified event users (a device,
-- `anonymous_id`, that logged in or gave an e-mail). The common shape identity works on.

with crm as (
    select
        'crm' as source_system,
        crm_customer_id as source_record_id,
        email_normalized,
        phone_normalized,
        first_name,
        last_name,
        email,
        phone,
        street,
        city,
        postal_code,
        region,
        country,
        birth_date,
        coalesce(updated_at, created_at) as record_updated_at,
        created_at as record_created_at,
        cast(null as varchar) as erp_account_id,
        crm_customer_id,
        gender,
        birth_place,
        occupation,
        company
    from {{ ref('stg_crm__customers') }}
),

erp as (
    select
        'erp' as source_system,
        erp_account_id as source_record_id,
        email_normalized,
        phone_normalized,
        first_name,
        last_name,
        email,
        phone,
        street,
        city,
        postal_code,
        region,
        country,
        cast(null as date) as birth_date,
        created_at as record_updated_at,
        created_at as record_created_at,
        erp_account_id,
        crm_customer_id,
        cast(null as varchar) as gender,
        cast(null as varchar) as birth_place,
        cast(null as varchar) as occupation,
        cast(null as varchar) as company
    from {{ ref('stg_erp__accounts') }}
),

support as (
    select
        'support' as source_system,
        ticket_id as source_record_id,
        requester_email_normalized as email_normalized,
        requester_phone_normalized as phone_normalized,
        nullif(split_part(requester_name, ' ', 1), '') as first_name,
        nullif(trim(substr(requester_name, length(split_part(requester_name, ' ', 1)) + 1)), '') as last_name,
        requester_email as email,
        requester_phone as phone,
        cast(null as varchar) as street,
        cast(null as varchar) as city,
        cast(null as varchar) as postal_code,
        cast(null as varchar) as region,
        cast(null as varchar) as country,
        cast(null as date) as birth_date,
        created_at as record_updated_at,
        created_at as record_created_at,
        erp_account_id,
        cast(null as varchar) as crm_customer_id,
        cast(null as varchar) as gender,
        cast(null as varchar) as birth_place,
        cast(null as varchar) as occupation,
        cast(null as varchar) as company
    from {{ ref('stg_support__tickets') }}
    where requester_email_normalized is not null or requester_phone_normalized is not null or erp_account_id is not null
),

-- A device's identity is what it said most often (ties: the latest); every event of an identified
-- device belongs to this record.
event_users as (
    select
        'events' as source_system,
        anonymous_id as source_record_id,
        mode(email_normalized) filter (where email_normalized is not null) as email_normalized,
        cast(null as varchar) as phone_normalized,
        cast(null as varchar) as first_name,
        cast(null as varchar) as last_name,
        mode(email_normalized) filter (where email_normalized is not null) as email,
        cast(null as varchar) as phone,
        cast(null as varchar) as street,
        cast(null as varchar) as city,
        cast(null as varchar) as postal_code,
        cast(null as varchar) as region,
        cast(null as varchar) as country,
        cast(null as date) as birth_date,
        max(occurred_at) as record_updated_at,
        min(occurred_at) as record_created_at,
        cast(null as varchar) as erp_account_id,
        mode(crm_customer_id) filter (where crm_customer_id is not null) as crm_customer_id,
        cast(null as varchar) as gender,
        cast(null as varchar) as birth_place,
        cast(null as varchar) as occupation,
        cast(null as varchar) as company
    from {{ ref('stg_events__events') }}
    group by anonymous_id
    having count(crm_customer_id) > 0 or count(email_normalized) > 0
),

final as (
    select * from crm
    union all
    select * from erp
    union all
    select * from support
    union all
    select * from event_users
)

select * from final
