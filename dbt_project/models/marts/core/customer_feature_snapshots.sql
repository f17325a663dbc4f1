-- One row per customer per training snapshot date: the customer features as they were on each date of
-- `training_as_of_dates()` (the prediction definition's snapshots, or the dates `segments backtest` asks
-- for), computed by the same macro as customer_features, so a churn or value model learns from what was
-- known on each date and is scored on today's snapshot with the same definitions.

{{ customer_features_as_of(training_as_of_dates()) }}
