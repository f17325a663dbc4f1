-- One row per customer (the current snapshot, at as_of_date): the customer features as of the features'
-- reference date (`as_of_date()`: var as_of_date, SEGMENTS_AS_OF, else the latest order). The features
-- themselves are defined once, in macros/customer_features.sql, for this table and the training snapshots.
-- Every column is registered (description, owner, PII class, allowed purposes) in _core__models.yml;
-- models read only the columns their purpose allows (warehouse/feature_registry.py).
-- The current snapshot is this table; every snapshot is kept in customer_features_history.

{{ customer_features_as_of('select ' ~ as_of_date() ~ ' as as_of_date') }}
