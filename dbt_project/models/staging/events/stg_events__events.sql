with source as (
    select * from {{ source('events', 'events') }}
),

renamed as (
    select
        event_id,
        occurred_at,
        anonymous_id,
        {{ clean_text('crm_customer_id') }} as crm_customer_id,
        {{ normalize_email('email') }} as email_normalized,
        event_type,
        device,
        channel,
        _source_file,
        _source_row,
        _file_sha256,
        _loaded_at
    from source
)

select * from renamed
