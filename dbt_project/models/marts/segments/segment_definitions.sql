-- One row per segment definition version: what each segment family may use, how its model is chosen
-- and which gates it must pass (the YAML content as JSON, with its digest). BI-facing, no PII.

with definitions as (
    select * from {{ ref('stg_ml__segment_definitions') }}
),

final as (
    select
        definition_name,
        definition_version,
        family as segment_family,
        description,
        content_sha256,
        content,
        first_used_at
    from definitions
)

select * from final
