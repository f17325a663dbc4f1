with source as (
    select * from {{ source('support', 'tickets') }}
),

renamed as (
    select
        ticket_id,
        {{ clean_text('requester_email') }} as requester_email,
        {{ normalize_email('requester_email') }} as requester_email_normalized,
        {{ clean_text('requester_name') }} as requester_name,
        {{ clean_text('requester_phone') }} as requester_phone,
        {{ normalize_phone('requester_phone') }} as requester_phone_normalized,
        {{ clean_text('erp_account_id') }} as erp_account_id,
        created_at,
        resolved_at,
        channel,
        lower(trim(category)) as category,
        priority,
        csat_score,
        _source_file,
        _source_row,
        _file_sha256,
        _loaded_at
    from source
)

select * from renamed
