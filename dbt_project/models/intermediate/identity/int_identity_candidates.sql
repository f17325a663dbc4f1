-- One row per candidate record (see int_customer_records_unioned) in the normalised forms identity
-- compares: name keys (nicknames resolved to the given name), mailbox e-mail, phone as national
-- significant number + E.164, postal code, street key. Placeholder values from the blocklist seed
-- are removed from the keys and named in `blocked_values`, so they can never link two people.

{% set phone_patterns = blocklist_patterns('phone') %}
{% set postal_code_patterns = blocklist_patterns('postal_code') %}

with records as (
    select * from {{ ref('int_customer_records_unioned') }}
),

blocklist as (
    select field, match_type, value, reason from {{ ref('identity_blocklist') }}
),

nicknames as (
    select lower(nickname) as nickname, lower(given_name) as given_name from {{ ref('name_nicknames') }}
),

calling_codes as (
    select country, cast(calling_code as varchar) as calling_code from {{ ref('country_calling_codes') }}
),

keyed as (
    select
        source_system || ':' || source_record_id as record_id,
        source_system,
        source_record_id,
        {{ normalize_person_name('first_name') }} as first_name_key,
        {{ normalize_person_name('last_name') }} as last_name_key,
        {{ normalize_email_key('email') }} as email_key,
        regexp_replace(phone, '[^0-9]', '', 'g') as phone_digits,
        coalesce(
            trim(phone) like '+%' or regexp_replace(phone, '[^0-9]', '', 'g') like '00%', false
        ) as is_phone_international,
        {{ normalize_postal_code('postal_code') }} as postal_code_key,
        {{ normalize_street('street') }} as street_key,
        {{ normalize_person_name('city') }} as city_key,
        upper(country) as country,
        birth_date,
        -- m / f / another value as written; empty when unknown
        case
            when lower(gender) in ('m', 'male', 'man') then 'm'
            when lower(gender) in ('f', 'female', 'woman') then 'f'
            else {{ normalize_person_name('gender') }}
        end as gender_key,
        {{ normalize_person_name('birth_place') }} as birth_place_key,
        {{ normalize_person_name('occupation') }} as occupation_key,
        {{ normalize_company('company') }} as company_key,
        -- references to another system's record (a record's own id is not a reference)
        case when source_system <> 'erp' then erp_account_id end as ref_erp_account_id,
        case when source_system <> 'crm' then crm_customer_id end as ref_crm_customer_id,
        record_updated_at,
        record_created_at
    from records
),

-- international digits without the 00 prefix, and their calling code (longest matching prefix)
international as (
    select
        k.phone_digits,
        case when k.phone_digits like '00%' then substr(k.phone_digits, 3) else k.phone_digits end as intl_digits
    from keyed as k
    where k.is_phone_international
    group by all
),

international_coded as (
    select
        i.phone_digits,
        i.intl_digits,
        arg_max(c.calling_code, length(c.calling_code)) as calling_code
    from international as i
    left join calling_codes as c on starts_with(i.intl_digits, c.calling_code)
    group by all
),

phones as (
    select
        k.record_id,
        case
            when k.is_phone_international and ic.calling_code is not null
                then substr(ic.intl_digits, length(ic.calling_code) + 1)
            when not k.is_phone_international and k.phone_digits like '0%' then substr(k.phone_digits, 2)
            when not k.is_phone_international then k.phone_digits
        end as phone_nsn,
        case
            when k.is_phone_international and ic.calling_code is not null then '+' || ic.intl_digits
            when not k.is_phone_international and cc.calling_code is not null
                then '+' || cc.calling_code || regexp_replace(k.phone_digits, '^0', '')
        end as phone_e164
    from keyed as k
    left join international_coded as ic on k.is_phone_international and ic.phone_digits = k.phone_digits
    left join calling_codes as cc on cc.country = k.country and cc.country <> 'CA'
    where nullif(k.phone_digits, '') is not null
),

-- (record, pattern) for every blocklist pattern a phone or postal code matches, each pattern a
-- constant regex (see the blocklist_patterns macro)
phone_pattern_hits as (
    {{ blocklist_pattern_hits('phones', 'phone_nsn', 'phone', phone_patterns) }}
),

postal_code_pattern_hits as (
    {{ blocklist_pattern_hits('keyed', 'postal_code_key', 'postal_code', postal_code_patterns) }}
),

-- one row per (record, blocklist entry) it hits: equality joins, and the pattern hits above
blocklist_hits as (
    select k.record_id, 'email' as field, b.reason
    from keyed as k
    inner join blocklist as b
        on b.field = 'email' and b.match_type = 'local_part'
        and regexp_replace(split_part(k.email_key, '@', 1), '[0-9._-]+$', '') = b.value
    union all
    select k.record_id, 'email' as field, b.reason
    from keyed as k
    inner join blocklist as b
        on b.field = 'email' and b.match_type = 'domain' and split_part(k.email_key, '@', 2) = b.value
    union all
    select k.record_id, 'first_name' as field, b.reason
    from keyed as k
    inner join blocklist as b on b.field = 'name' and b.match_type = 'exact' and b.value = k.first_name_key
    union all
    select k.record_id, 'last_name' as field, b.reason
    from keyed as k
    inner join blocklist as b on b.field = 'name' and b.match_type = 'exact' and b.value = k.last_name_key
    union all
    select h.record_id, 'phone' as field, b.reason
    from phone_pattern_hits as h
    inner join blocklist as b on b.field = 'phone' and b.match_type = 'pattern' and b.value = h.value
    union all
    select k.record_id, 'postal_code' as field, b.reason
    from keyed as k
    inner join blocklist as b
        on b.field = 'postal_code' and b.match_type = 'exact' and k.postal_code_key = upper(b.value)
    union all
    select h.record_id, 'postal_code' as field, b.reason
    from postal_code_pattern_hits as h
    inner join blocklist as b on b.field = 'postal_code' and b.match_type = 'pattern' and b.value = h.value
),

blocked as (
    select
        record_id,
        list(distinct field || ': ' || reason order by field || ': ' || reason) as blocked_values,
        bool_or(field = 'email') as is_email_blocked,
        bool_or(field = 'phone') as is_phone_blocked,
        bool_or(field = 'first_name') as is_first_name_blocked,
        bool_or(field = 'last_name') as is_last_name_blocked,
        bool_or(field = 'postal_code') as is_postal_code_blocked
    from blocklist_hits
    group by record_id
),

final as (
    select
        k.record_id,
        k.source_system,
        k.source_record_id,
        case when not coalesce(bl.is_first_name_blocked, false) then k.first_name_key end as first_name_key,
        case when not coalesce(bl.is_first_name_blocked, false) then coalesce(n.given_name, k.first_name_key) end
            as given_name_key,
        case when not coalesce(bl.is_last_name_blocked, false) then k.last_name_key end as last_name_key,
        case when not coalesce(bl.is_email_blocked, false) then k.email_key end as email_key,
        case when not coalesce(bl.is_phone_blocked, false) then p.phone_nsn end as phone_nsn,
        case when not coalesce(bl.is_phone_blocked, false) then p.phone_e164 end as phone_e164,
        case when not coalesce(bl.is_postal_code_blocked, false) then k.postal_code_key end as postal_code_key,
        k.street_key,
        k.city_key,
        k.country,
        k.birth_date,
        k.gender_key,
        k.birth_place_key,
        k.occupation_key,
        k.company_key,
        k.ref_erp_account_id,
        k.ref_crm_customer_id,
        k.record_updated_at,
        k.record_created_at,
        coalesce(bl.blocked_values, []) as blocked_values,
        coalesce(bl.is_email_blocked, false) as is_email_placeholder,
        coalesce(bl.is_phone_blocked, false) as is_phone_placeholder,
        coalesce(bl.is_first_name_blocked, false) as is_first_name_placeholder,
        coalesce(bl.is_last_name_blocked, false) as is_last_name_placeholder
    from keyed as k
    left join phones as p using (record_id)
    left join blocked as bl using (record_id)
    left join nicknames as n on n.nickname = k.first_name_key
)

select * from final
