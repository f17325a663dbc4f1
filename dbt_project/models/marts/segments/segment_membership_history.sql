-- SCD2 segment membership: one row per customer, segment family and period in one segment under one
-- definition version. valid_to is null (and is_current true) for the open period; at any instant a
-- customer has at most one segment per family. "Which segment was customer X in on date D":
--   where valid_from <= D and (valid_to is null or valid_to > D). BI-facing: no PII.

with history as (
    select * from {{ ref('stg_ml__segment_membership_history') }}
),

final as (
    select
        customer_id,
        segment_family,
        segment_key,
        segment_name,
        valid_from,
        valid_to,
        is_current,
        model_name,
        model_version,
        definition_version,
        is_fallback,
        fallback_reason,
        opened_run_id,
        closed_run_id
    from history
)

select * from final
