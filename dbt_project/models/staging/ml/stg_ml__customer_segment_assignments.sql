-- ml.customer_segment_assignments, written by the scoring asset (replaced on every scoring run).

with source as (
    select * from {{ source('ml', 'customer_segment_assignments') }}
),

renamed as (
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
    from source
)

select * from renamed
