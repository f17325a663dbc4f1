with source as (
    select * from {{ source('crm', 'consents') }}
),

renamed as (
    select
        consent_id,
        crm_customer_id,
        purpose,
        is_granted,
        recorded_at,
        _source_file,
        _source_row,
        _file_sha256,
        _loaded_at
    from source
)

select * from renamed
