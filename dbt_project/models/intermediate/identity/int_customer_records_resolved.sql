-- One row per candidate record with the customer identity resolution assigned to it
-- (stg_identity__customer_source_records: the Dagster identity asset's write-back), the record's raw
-- fields for the golden record, and its survivorship score.
--
-- Survivorship score = source trust x recency x completeness:
--   trust       var identity_source_trust (CRM is the system of record for people);
--   recency     1 / (1 + years between the record's last update and the newest record);
--   completeness share of the golden-record fields (completeness_fields) the record fills.

{% set completeness_fields = [
    'first_name', 'last_name', 'email', 'phone', 'street', 'city', 'postal_code', 'country', 'birth_date'
] -%}

with records as (
    select * from {{ ref('int_customer_records_unioned') }}
),

candidates as (
    select
        record_id, phone_e164, is_email_placeholder, is_phone_placeholder, is_first_name_placeholder,
        is_last_name_placeholder
    from {{ ref('int_identity_candidates') }}
),

assignments as (
    select record_id, customer_id, matched_on, match_probability
    from {{ ref('stg_identity__customer_source_records') }}
),

joined as (
    select
        a.customer_id,
        r.source_system,
        r.source_record_id,
        a.record_id,
        a.matched_on,
        a.match_probability,
        -- placeholders (blocklist) never survive into the golden record
        case when not coalesce(c.is_first_name_placeholder, false) then r.first_name end as first_name,
        case when not coalesce(c.is_last_name_placeholder, false) then r.last_name end as last_name,
        case when not coalesce(c.is_email_placeholder, false) then r.email end as email,
        case when not coalesce(c.is_email_placeholder, false) then r.email_normalized end as email_normalized,
        case when not coalesce(c.is_phone_placeholder, false) then coalesce(c.phone_e164, r.phone) end as phone,
        r.street,
        r.city,
        r.postal_code,
        r.region,
        r.country,
        r.birth_date,
        r.record_updated_at,
        r.record_created_at
    from records as r
    inner join assignments as a on a.record_id = r.source_system || ':' || r.source_record_id
    left join candidates as c on c.record_id = a.record_id
),

final as (
    select
        *,
        {{ source_trust('source_system') }}
        * (1.0 / (
            1.0
            + greatest({{ dbt.datediff('record_updated_at', '(max(record_updated_at) over ())', 'day') }}, 0) / 365.0
        ))
        * ((
            {%- for field in completeness_fields %}
                {% if not loop.first %}+ {% endif %}cast({{ field }} is not null as {{ dbt.type_int() }})
            {%- endfor %}
        ) / {{ completeness_fields | length }}.0) as survivorship_score
    from joined
)

select * from final
