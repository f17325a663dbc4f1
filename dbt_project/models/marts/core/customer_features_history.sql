-- Every point-in-time snapshot of customer_features, one row per customer per as_of_date: a run
-- appends its snapshot, a re-run for the same as_of_date replaces it (delete+insert), so training
-- sets for past dates (and labels such as "ordered in the 90 days after as_of") can be rebuilt
-- without leaking the future.

{{ config(
    materialized='incremental',
    unique_key=['as_of_date', 'customer_id'],
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns'
) }}

select * from {{ ref('customer_features') }}
