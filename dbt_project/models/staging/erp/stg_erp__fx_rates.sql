with source as (
    select * from {{ source('erp', 'fx_rates') }}
),

renamed as (
    select
        rate_date,
        upper(currency) as currency,
        rate_to_base,
        _source_file,
        _source_row,
        _file_sha256,
        _loaded_at
    from source
)

select * from renamed
