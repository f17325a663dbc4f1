-- One row per customer per segment family (behavioural, rfm, predictive): the current segment of each family
-- with the customer's RFM scores, the rule or reason that placed the customer, and the model and
-- definition versions that produced it. Within a family the segments are mutually exclusive.
-- BI-facing: no PII.

with assignments as (
    select * from {{ ref('stg_ml__customer_segment_assignments') }}
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
