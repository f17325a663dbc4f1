"""Point-in-time training sets: feature snapshots of past dates joined to what happened after each date.

`marts.customer_feature_snapshots` holds the features as they were on each training date (the same dbt
macro as `marts.customer_features`, so nothing after a date is read), `marts.customer_outcomes` the
orders and revenue in the horizon after it. Only snapshots whose outcome window is complete are labels; only
the customers the definition may predict are rows (at least `min_orders` completed orders by the date, and a
lawful basis for profiling, as for segmentation's fallbacks).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ml.prediction.definition import PredictionDefinition
from ml.prediction.inputs import RFM_COLUMNS
from ml.segmentation.fallback import fallback_reasons
from warehouse.feature_registry import ELIGIBILITY_COLUMNS, load_registry, require_purpose

SNAPSHOTS_TABLE = "marts.customer_feature_snapshots"
OUTCOMES_TABLE = "marts.customer_outcomes"
CURRENT_FEATURES_TABLE = "marts.customer_features"
READ_CHUNK_VECTORS = 128  # DuckDB vectors of 2,048 rows per chunk read
OUTCOME_COLUMNS = (
    "future_orders",
    "future_revenue_base",
    "is_churned",
    "past_window_orders",
    "past_window_revenue_base",
)


def feature_columns(definition: PredictionDefinition) -> list[str]:
    """Every column the models read (each registered and allowed for profiling) and the eligibility columns."""
    modelled = list(dict.fromkeys([*definition.features, *RFM_COLUMNS]))
    registry = load_registry()
    require_purpose(modelled, "profiling", registry)
    require_purpose(list(ELIGIBILITY_COLUMNS), "eligibility", registry)
    return list(dict.fromkeys([*ELIGIBILITY_COLUMNS, *modelled]))


def predictable(frame: pd.DataFrame, definition: PredictionDefinition) -> pd.Series:
    """True where the definition may predict the customer: no fallback reason (lawful basis for profiling,
    enough completed orders, order lines present)."""
    return fallback_reasons(frame, definition).isna()


def read_training_set(con: duckdb.DuckDBPyConnection, definition: PredictionDefinition) -> pd.DataFrame:
    """One row per predictable customer per snapshot date with a complete outcome window: the features as of
    the date and the outcome after it, ordered by date and customer (a stable input for digests)."""
    features = ", ".join(f"s.{c}" for c in feature_columns(definition))  # registry names, never user input
    outcomes = ", ".join(f"o.{c}" for c in OUTCOME_COLUMNS)
    result = con.execute(
        f"""
        select {features}, {outcomes}
        from {SNAPSHOTS_TABLE} as s
        inner join {OUTCOMES_TABLE} as o using (customer_id, as_of_date)
        where o.is_outcome_complete
        order by s.as_of_date, s.customer_id
        """
    )
    # read in chunks, each filtered to the predictable customers at once: the unfiltered snapshots of 1M
    # persons (3.6M rows) in one frame were the peak memory of training
    parts = []
    while True:
        chunk = result.fetch_df_chunk(READ_CHUNK_VECTORS)
        if parts and chunk.empty:
            break
        parts.append(chunk[predictable(chunk, definition)])
    return pd.concat(parts, ignore_index=True)


def read_current_features(con: duckdb.DuckDBPyConnection, definition: PredictionDefinition) -> pd.DataFrame:
    """Today's snapshot of every customer (the columns the models read and the eligibility columns)."""
    columns = ", ".join(feature_columns(definition))
    return con.execute(f"select {columns} from {CURRENT_FEATURES_TABLE} order by customer_id").df()


def snapshot_dates(frame: pd.DataFrame) -> list[pd.Timestamp]:
    return sorted(pd.to_datetime(frame["as_of_date"]).unique())
