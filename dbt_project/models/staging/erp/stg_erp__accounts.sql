with source as (
    select * from {{ source('erp', 'accounts') }}
),

renamed as (
    select
        erp_account_id,
        {{ clean_text('crm_customer_id') }} as crm_customer_id,
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
        created_at,
        _source_file,
        _source_row,
        _file_sha256,
        _loaded_at
    from source
)

select * from renamed
