"""Scoring: churn risk and future value of every customer of today's snapshot, with the champions.

`ml.customer_predictions` holds one row per customer of `marts.customer_features`, replaced whole in one
transaction by each scoring run: the churn probability over the definition's horizon, the expected orders and
revenue in it, the model versions and the definition version. A customer the definition may not predict (no
lawful basis for profiling, too few orders, order lines missing) or any customer while no version has passed
its gates has no prediction and says why (`not_predicted_reason`, the fallback reason codes of segmentation).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from ml.model_registry import load_by_alias
from ml.prediction.churn import input_columns
from ml.prediction.definition import PredictionDefinition
from ml.prediction.training_sets import read_current_features
from ml.segmentation.fallback import fallback_reasons
from ml.segmentation.store import PREDICTIONS_TABLE
from warehouse.connections import transaction
from warehouse.tables import replace_table

NO_CHAMPION = "no_champion_model"


@dataclass(frozen=True)
class PredictionScoring:
    rows: int
    predicted: int
    churn_model_version: str | None
    value_model_version: str | None
    mean_churn_probability: float | None
    expected_revenue_base: float | None
    not_predicted: dict[str, int]


def score_predictions(
    con: duckdb.DuckDBPyConnection, tracking_uri: str, run_id: str, definition: PredictionDefinition
) -> PredictionScoring:
    features = read_current_features(con, definition)
    reasons = fallback_reasons(features, definition)
    churn = load_by_alias(tracking_uri, definition.churn_model_name)
    value = load_by_alias(tracking_uri, definition.value_model_name)
    if churn is None or value is None:
        reasons = reasons.fillna(NO_CHAMPION)
    ok = reasons.isna().to_numpy()
    out = pd.DataFrame(
        {
            "customer_id": features["customer_id"],
            "as_of_date": features["as_of_date"],
            "horizon_days": definition.horizon_days,
            "churn_probability": np.nan,
            "expected_orders": np.nan,
            "expected_revenue_base": np.nan,
            "not_predicted_reason": reasons,
            "churn_model_version": churn[1] if churn else None,
            "value_model_version": value[1] if value else None,
            "definition_version": definition.version,
        }
    )
    if ok.any():
        # the models' signatures take doubles (nullable): counts arrive as Int64
        scored = features.loc[ok, list(input_columns(definition))].astype("float64")
        out.loc[ok, "churn_probability"] = churn[0].predict(scored)["churn_probability"].to_numpy()
        predicted = value[0].predict(scored)
        out.loc[ok, "expected_orders"] = predicted["expected_orders"].to_numpy()
        out.loc[ok, "expected_revenue_base"] = predicted["expected_revenue_base"].to_numpy()
    with transaction(con):
        replace_table(con, PREDICTIONS_TABLE)
        con.register("predictions_frame", out)
        con.execute(
            f"""insert into {PREDICTIONS_TABLE} by name
                select *, current_timestamp::timestamp as predicted_at, ? as dagster_run_id from predictions_frame""",
            [run_id],
        )
        con.unregister("predictions_frame")
    done = out[ok]
    return PredictionScoring(
        rows=len(out),
        predicted=int(ok.sum()),
        churn_model_version=churn[1] if churn else None,
        value_model_version=value[1] if value else None,
        mean_churn_probability=float(done["churn_probability"].mean()) if len(done) else None,
        expected_revenue_base=float(done["expected_revenue_base"].sum()) if len(done) else None,
        not_predicted={str(k): int(v) for k, v in reasons.value_counts().items()},
    )
