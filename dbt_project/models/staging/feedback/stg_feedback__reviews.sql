with source as (
    select * from {{ source('feedback', 'reviews') }}
),

renamed as (
    select
        review_id,
        order_id,
        score,
        created_at,
        answered_at,
        _source_file,
        _source_row,
        _file_sha256,
        _loaded_at
    from source
)

select * from renamed
