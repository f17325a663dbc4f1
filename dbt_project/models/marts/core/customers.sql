-- One row per customer (person): the golden record.
-- Skeleton survivorship: per field, the first non-empty value by source trust (CRM, ERP, support),
-- then the most recently updated record.

with resolved as (
    select
        *,
        case source_system when 'crm' then 1 when 'erp' then 2 else 3 end as source_rank
    from {{ ref('int_customer_records_resolved') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by customer_id order by source_rank, record_updated_at desc, source_record_id
        ) as survivorship_rank
    from resolved
),

golden as (
    select
        customer_id,
        min_by(first_name, survivorship_rank) filter (where first_name is not null) as first_name,
        min_by(last_name, survivorship_rank) filter (where last_name is not null) as last_name,
        min_by(email, survivorship_rank) filter (where email is not null) as email,
        min_by(phone, survivorship_rank) filter (where phone is not null) as phone,
        min_by(street, survivorship_rank) filter (where street is not null) as street,
        min_by(city, survivorship_rank) filter (where city is not null) as city,
        min_by(postal_code, survivorship_rank) filter (where postal_code is not null) as postal_code,
        min_by(country, survivorship_rank) filter (where country is not null) as country,
        min_by(birth_date, survivorship_rank) filter (where birth_date is not null) as birth_date,
        min(record_created_at) as first_seen_at,
        count(*) as source_record_count,
        count(*) filter (where source_system = 'crm') as crm_record_count,
        count(*) filter (where source_system = 'erp') as erp_account_count,
        count(*) filter (where source_system = 'support') as support_record_count,
        list_sort(list(source_system || ':' || source_record_id)) as source_record_ids
    from ranked
    group by customer_id
),

crm_records as (
    select customer_id, source_record_id as crm_customer_id
    from resolved
    where source_system = 'crm'
),

latest_consents as (
    select
        r.customer_id,
        c.purpose,
        max_by(c.is_granted, c.recorded_at) as is_granted
    from {{ ref('stg_crm__consents') }} as c
    inner join crm_records as r on r.crm_customer_id = c.crm_customer_id
    group by r.customer_id, c.purpose
),

consents as (
    select
        customer_id,
        coalesce(bool_or(is_granted) filter (where purpose = 'profiling'), false) as has_profiling_consent,
        coalesce(bool_or(is_granted) filter (where purpose = 'marketing_email'), false) as has_marketing_email_consent,
        coalesce(bool_or(is_granted) filter (where purpose = 'marketing_sms'), false) as has_marketing_sms_consent
    from latest_consents
    group by customer_id
),

final as (
    select
        g.*,
        coalesce(c.has_profiling_consent, false) as has_profiling_consent,
        coalesce(c.has_marketing_email_consent, false) as has_marketing_email_consent,
        coalesce(c.has_marketing_sms_consent, false) as has_marketing_sms_consent
    from golden as g
    left join consents as c using (customer_id)
)

select * from final
