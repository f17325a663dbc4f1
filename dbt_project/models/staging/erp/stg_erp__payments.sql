with source as (
    select * from {{ source('erp', 'payments') }}
),

renamed as (
    select
        payment_id,
        order_id,
        paid_at,
        amount,
        upper(currency) as currency,
        method,
        instalments,
        _source_file,
        _source_row,
        _file_sha256,
        _loaded_at
    from source
)

select * from renamed
