-- One row per customer (person): the golden record.
-- Per-field survivorship: each field comes from the record with the best survivorship score
-- (source trust x recency x completeness, see int_customer_records_resolved) that has a value,
-- with its provenance: <field>_source (the record id) and <field>_updated_at.

with resolved as (
    select
        *,
        -- the customer's records best first: one sort, then every field takes the first record
        -- that has a value (arg_min on this rank, a plain aggregate instead of 30 ordered ones)
        row_number() over (partition by customer_id order by survivorship_score desc, record_id asc) as survivor_rank
    from {{ ref('int_customer_records_resolved') }}
),

-- A customer was seen at their first order even when their account record says later (a re-delivered
-- account carries the date of the export it came from: Online Retail II's yearly files).
first_orders as (
    select r.customer_id, min(o.ordered_at) as first_ordered_at
    from resolved as r
    inner join {{ ref('stg_erp__orders') }} as o on o.erp_account_id = r.source_record_id
    where r.source_system = 'erp'
    group by r.customer_id
),

records as (
    select
        r.*,
        fo.first_ordered_at
    from resolved as r
    left join first_orders as fo on fo.customer_id = r.customer_id
),

golden as (
    select
        customer_id,
        {{ survivor('first_name') }},
        {{ survivor('last_name') }},
        {{ survivor('email') }},
        {{ survivor('phone') }},
        {{ survivor('street') }},
        {{ survivor('city') }},
        {{ survivor('postal_code') }},
        {{ survivor('region') }},
        {{ survivor('country') }},
        {{ survivor('birth_date') }},
        least(min(record_created_at), min(first_ordered_at)) as first_seen_at,
        count(*) as source_record_count,
        count(*) filter (where source_system = 'crm') as crm_record_count,
        count(*) filter (where source_system = 'erp') as erp_account_count,
        count(*) filter (where source_system = 'support') as support_record_count,
        count(*) filter (where source_system = 'events') as event_device_count,
        count(distinct source_system) as source_system_count,
        list_sort(list(record_id)) as source_record_ids
    from records
    group by customer_id
),

crm_records as (
    select customer_id, source_record_id as crm_customer_id
    from resolved
    where source_system = 'crm'
),

-- the latest decision per purpose across all of the customer's CRM records wins (a revocation on
-- a duplicate record revokes for the person)
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
        coalesce(bool_and(is_granted) filter (where purpose = 'profiling'), false) as has_profiling_consent,
        coalesce(bool_and(is_granted) filter (where purpose = 'marketing_email'), false) as has_marketing_email_consent,
        coalesce(bool_and(is_granted) filter (where purpose = 'marketing_sms'), false) as has_marketing_sms_consent
    from latest_consents
    group by customer_id
),

-- The lawful basis of each purpose per customer. The project configures a basis per purpose and
-- source system (stg_audit__lawful_bases; '*' = default). A customer known to a source whose basis is
-- contract or legitimate interest has that basis (contract first); otherwise only a granted consent
-- is one. An explicit refusal or withdrawal (the latest consent decision) always wins: 'objected'.
customer_sources as (
    select distinct customer_id, source_system
    from resolved
),

purposes as (
    select unnest(['profiling', 'marketing_email', 'marketing_sms']) as purpose
),

configured as (
    select
        s.customer_id,
        p.purpose,
        max(
            case coalesce(o.basis, d.basis, 'consent')
                when 'contract' then 2 when 'legitimate_interest' then 1 else 0
            end
        ) as basis_rank
    from customer_sources as s
    cross join purposes as p
    left join {{ ref('stg_audit__lawful_bases') }} as d
        on d.purpose = p.purpose and d.source_system = '*'
    left join {{ ref('stg_audit__lawful_bases') }} as o
        on o.purpose = p.purpose and o.source_system = s.source_system
    group by s.customer_id, p.purpose
),

purpose_bases as (
    select
        cf.customer_id,
        cf.purpose,
        case
            when lc.is_granted = false then 'objected'
            when lc.is_granted then 'consent'
            when cf.basis_rank = 2 then 'contract'
            when cf.basis_rank = 1 then 'legitimate_interest'
            else 'none'
        end as basis
    from configured as cf
    left join latest_consents as lc on lc.customer_id = cf.customer_id and lc.purpose = cf.purpose
),

bases as (
    select
        customer_id,
        any_value(basis) filter (where purpose = 'profiling') as profiling_basis,
        any_value(basis) filter (where purpose = 'marketing_email') as marketing_email_basis,
        any_value(basis) filter (where purpose = 'marketing_sms') as marketing_sms_basis
    from purpose_bases
    group by customer_id
),

final as (
    select
        g.*,
        coalesce(c.has_profiling_consent, false) as has_profiling_consent,
        coalesce(c.has_marketing_email_consent, false) as has_marketing_email_consent,
        coalesce(c.has_marketing_sms_consent, false) as has_marketing_sms_consent,
        b.profiling_basis,
        b.marketing_email_basis,
        b.marketing_sms_basis
    from golden as g
    left join consents as c using (customer_id)
    left join bases as b using (customer_id)
)

select * from final
