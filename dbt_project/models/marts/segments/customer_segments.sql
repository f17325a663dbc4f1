-- One row per customer: the current behavioural segment with its RFM scores, reason and versions.
-- BI-facing: no PII.

with assignments as (
    select * from {{ source('ml', 'customer_segment_assignments') }}
),

final as (
    select
        customer_id,
        segment_family,
        segment_key,
        segment_name,
        r_score,
        f_score,
        m_score,
        rfm_segment,
        model_name,
        model_version,
        definition_version,
        assigned_at,
        reason,
        is_fallback,
        fallback_reason,
        dagster_run_id
    from assignments
)

select * from final
