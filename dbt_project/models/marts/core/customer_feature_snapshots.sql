-- One row per customer per training snapshot date: the customer features as they were on each date of
-- `training_as_of_dates()` (the prediction definition's snapshots, or the dates `segments backtest` asks
-- for), computed by the same macro as customer_features, so a churn or value model learns from what was
-- known on each date and is scored on today's snapshot with the same definitions.
-- Built in separate statements (macros/customer_features.sql, `stage_customer_feature_parts`): the pre-hook
-- stages each source's aggregates as a table, this query joins them, the post-hook drops them.
-- depends_on: {{ ref('customers') }} {{ ref('orders') }} {{ ref('order_lines') }} {{ ref('support_tickets') }}
-- depends_on: {{ ref('stg_feedback__reviews') }} {{ ref('stg_events__events') }}
-- depends_on: {{ ref('int_customer_records_resolved') }}
{{ config(
    pre_hook="{{ stage_customer_feature_parts(training_as_of_dates()) }}",
    post_hook="{{ drop_staged_customer_feature_parts() }}",
) }}

{{ customer_features_staged(training_as_of_dates()) }}
