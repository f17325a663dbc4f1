with source as (
    select * from {{ source('erp', 'order_lines') }}
),

renamed as (
    select
        order_line_id,
        order_id,
        product_id,
        lower(trim(category)) as category,
        quantity,
        unit_price,
        coalesce(discount_amount, 0) as discount_amount,
        _source_file,
        _source_row,
        _file_sha256,
        _loaded_at
    from source
)

select * from renamed
