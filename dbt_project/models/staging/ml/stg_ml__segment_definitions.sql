-- ml.segment_definitions, written when a model is trained under a definition or the RFM rule table scores.

with source as (
    select * from {{ source('ml', 'segment_definitions') }}
),

renamed as (
    select
        definition_name,
        definition_version,
        family,
        description,
        content_sha256,
        content,
        first_used_at,
        last_used_run_id
    from source
)

select * from renamed
