with source as (
    select * from {{ source('erp', 'orders') }}
),

renamed as (
    select
        order_id,
        erp_account_id,
        ordered_at,
        cast(ordered_at as date) as order_date,
        lower(channel) as channel,
        upper(currency) as currency,
        lower(status) as status,
        {{ clean_text('source_status') }} as source_status,
        shipping_amount,
        tax_amount,
        _source_file,
        _source_row,
        _file_sha256,
        _loaded_at
    from source
)

select * from renamed
