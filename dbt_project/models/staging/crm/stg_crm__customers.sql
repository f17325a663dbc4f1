with source as (
    select * from {{ source('crm', 'customers') }}
),

renamed as (
    select
        crm_customer_id,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        {{ clean_text('email') }} as email,
        {{ normalize_email('email') }} as email_normalized,
        {{ clean_text('phone') }} as phone,
        {{ normalize_phone('phone') }} as phone_normalized,
        {{ clean_text('street') }} as street,
        {{ clean_text('city') }} as city,
        {{ clean_text('postal_code') }} as postal_code,
        {{ clean_text('region') }} as region,
        upper({{ clean_text('country') }}) as country,
        birth_date,
        created_at,
        updated_at,
        lower({{ clean_text('gender') }}) as gender,
        {{ clean_text('birth_place') }} as birth_place,
        {{ clean_text('occupation') }} as occupation,
        {{ clean_text('company') }} as company,
        _source_file,
        _source_row,
        _file_sha256,
        _loaded_at
    from source
)

select * from renamed
