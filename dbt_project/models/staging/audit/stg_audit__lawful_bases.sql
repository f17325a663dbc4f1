-- audit.lawful_bases is written by the ingest step from the user's project (warehouse/lawful_bases.py).

with source as (
    select * from {{ source('audit', 'lawful_bases') }}
),

renamed as (
    select
        purpose,
        source_system,
        basis,
        project,
        recorded_at
    from source
)

select * from renamed
