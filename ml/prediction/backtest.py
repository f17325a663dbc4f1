"""Out-of-time back-tests of the churn and value models on point-in-time training sets.

Each snapshot date d is predicted by models trained only on snapshots whose outcome window had closed by d
(date + horizon <= d), so no label of the future reaches the model; its features are point in time by
construction (`marts.customer_feature_snapshots`). Beside the models, the baselines an analyst would use:

- churn: "days since the last order" alone, and BG/NBD's probability of no order in the horizon (and
  1 - P(alive), which calls every one-time buyer alive);
- value: last period's revenue (the horizon_days up to d) as the prediction of the next period's.

`backtest` returns per date and overall: churn AUC, Brier score, calibration error, the AUC spread across
dates and the stability of the risk ranking of the same customers between consecutive dates; for each value
candidate and the baseline, the Spearman correlation with actual future revenue and the share of it the top
decile captured. `fit_final` then fits the models a run registers on every labelled snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ml.prediction import metrics as m
from ml.prediction.churn import churn_probability, fit_churn_model, input_columns
from ml.prediction.definition import PredictionDefinition
from ml.prediction.inputs import feature_matrix
from ml.prediction.value import BgNbdValue, GradientBoostingValue

LAST_PERIOD = "last_period"  # the value baseline: revenue in the horizon before the snapshot
# scikit-learn's gradient boosting runs its OpenMP loops on one thread: on the 2-core machine one churn fit of
# 55k rows took 1.7 s on one thread and 2.6 s on two, and with a second busy process (another run, a test
# worker) the two-thread spin-waits made a 20k-customer back-test take 281 s instead of ~20 s.
SINGLE_THREADED = {"limits": 1, "user_api": "openmp"}


class BacktestError(ValueError):
    """A training set a back-test cannot use (too few dates or rows), with the reason."""


@dataclass
class DateResult:
    """One out-of-time snapshot date: what the models trained before it scored on it."""

    as_of_date: str
    train_rows: int
    test_rows: int
    churn_rate: float
    metrics: dict[str, float]


@dataclass
class Backtest:
    dates: list[DateResult]
    churn: dict[str, float]
    value: dict[str, dict[str, float]]  # candidate (and the baseline) -> spearman, top_decile, ...
    best_value_candidate: str
    curves: dict[str, object] = field(default_factory=dict)  # for the plots: last date's arrays

    def summary(self) -> dict[str, float]:
        """Flat metrics (MLflow names): churn_*, value_<candidate>_*."""
        out = {f"churn_{k}": v for k, v in self.churn.items()}
        for candidate, values in self.value.items():
            out.update({f"value_{candidate}_{k}": v for k, v in values.items()})
        return out

    def to_json(self, definition: PredictionDefinition) -> dict:
        """Everything the report says, for machines: per date, overall, the gates' verdicts."""
        return {
            "definition": {"name": definition.name, "version": definition.version},
            "horizon_days": definition.horizon_days,
            "dates": [
                {
                    "as_of_date": r.as_of_date,
                    "train_rows": r.train_rows,
                    "test_rows": r.test_rows,
                    "churn_rate": r.churn_rate,
                    **r.metrics,
                }
                for r in self.dates
            ],
            "churn": self.churn,
            "value": self.value,
            "best_value_candidate": self.best_value_candidate,
            "churn_gate_failures": definition.churn_gates.failures(self.churn),
            "value_gate_failures": definition.value_gates.failures(self.value_gate_metrics()),
        }

    def value_gate_metrics(self) -> dict[str, float]:
        """The chosen value candidate's metrics, with its gain over the last-period baseline."""
        best, base = self.value[self.best_value_candidate], self.value[LAST_PERIOD]
        return {
            **best,
            "top_decile_gain_over_last_period": best["top_decile"] - base["top_decile"],
            "spearman_gain_over_last_period": best["spearman"] - base["spearman"],
        }


def sample_rows(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most `limit` rows, the same share of every snapshot date (a stratified random sample)."""
    if len(frame) <= limit:
        return frame
    share = limit / len(frame)
    return frame.groupby("as_of_date", group_keys=False).sample(frac=share, random_state=seed).sort_index()


def evaluated_rows(frame: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """At most `limit` customers of one snapshot date: those with the smallest hash of their id, so the same
    customers at every date (the rank stability compares them) and on every run. Scoring is what a back-test
    costs per customer (three models and BG/NBD per date); 100,000 customers measure an AUC to about 0.003."""
    if limit is None or len(frame) <= limit:
        return frame
    key = pd.util.hash_pandas_object(frame["customer_id"], index=False).to_numpy()
    return frame.iloc[np.sort(np.argsort(key, kind="stable")[:limit])]


def _dates(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["as_of_date"])


def backtest(training_set: pd.DataFrame, definition: PredictionDefinition, seed: int = 0) -> Backtest:
    """Score the definition's `evaluate_last` latest snapshot dates, each with models trained on the snapshots
    whose outcome window had closed by then (see the module doc)."""
    with threadpool_limits(**SINGLE_THREADED):
        return _backtest(training_set, definition, seed)


def _backtest(training_set: pd.DataFrame, definition: PredictionDefinition, seed: int) -> Backtest:
    dates = _dates(training_set)
    horizon = pd.Timedelta(days=definition.horizon_days)
    results: list[DateResult] = []
    value_scores: dict[str, list[tuple[float, float]]] = {}
    previous_risk: pd.Series | None = None
    stabilities: list[float] = []
    curves: dict[str, object] = {}
    for day in sorted(dates.unique())[-definition.evaluate_last :]:
        train = training_set[dates + horizon <= day]
        test = evaluated_rows(training_set[dates == day], definition.max_evaluated_customers)
        if len(train) < definition.min_training_rows or test["is_churned"].nunique() < 2:
            continue
        train = sample_rows(train, definition.max_training_rows, seed)
        if train["is_churned"].nunique() < 2:
            continue
        churned = test["is_churned"].to_numpy(dtype=bool)
        columns = input_columns(definition)
        model = fit_churn_model(feature_matrix(train, columns), train["is_churned"], definition, seed)
        risk = churn_probability(model, feature_matrix(test, columns))
        alive = BgNbdValue(definition.horizon_days).fit(test)
        bg = alive.predict(test)
        recency = pd.to_numeric(test["recency_days"], errors="coerce").to_numpy(dtype=float)
        found = {
            "auc": m.auc(churned, risk),
            "brier": m.brier(churned, risk),
            "ece": m.expected_calibration_error(churned, risk),
            "recency_auc": m.auc(churned, recency),
            "bg_nbd_auc": m.auc(churned, bg["p_no_order"].to_numpy()),
            "p_alive_auc": m.auc(churned, 1 - bg["p_alive"].to_numpy()),
        }
        actual = test["future_revenue_base"].to_numpy(dtype=float)
        predictions = {LAST_PERIOD: test["past_window_revenue_base"].to_numpy(dtype=float)}
        for candidate in definition.value_candidates:
            if candidate == "bg_nbd":
                predictions[candidate] = bg["expected_revenue_base"].to_numpy()
            else:
                fitted = GradientBoostingValue(definition.features, seed).fit(train, orders=False)
                predictions[candidate] = fitted.predict_revenue(test)
        for name, predicted in predictions.items():
            found[f"{name}_spearman"] = m.spearman(predicted, actual)
            found[f"{name}_top_decile"] = m.top_decile_capture(predicted, actual)
            value_scores.setdefault(name, []).append((found[f"{name}_spearman"], found[f"{name}_top_decile"]))
        current = pd.Series(risk, index=test["customer_id"].to_numpy())
        if previous_risk is not None:
            common = current.index.intersection(previous_risk.index)
            if len(common) > 2:
                stabilities.append(m.spearman(current[common].to_numpy(), previous_risk[common].to_numpy()))
        previous_risk = current
        results.append(DateResult(str(pd.Timestamp(day).date()), len(train), len(test), float(churned.mean()), found))
        curves = {
            "customer_id": test["customer_id"].to_numpy(),
            "churned": churned,
            "risk": risk,
            "recency": recency,
            "bg_nbd": bg["p_no_order"].to_numpy(),
            "actual_revenue": actual,
            "predicted_revenue": predictions,
            "as_of_date": results[-1].as_of_date,
        }
    if not results:
        raise BacktestError(
            f"no snapshot date has earlier snapshots with a closed outcome window and >= "
            f"{definition.min_training_rows} rows (dates: {[str(d.date()) for d in sorted(dates.unique())]}, "
            f"horizon {definition.horizon_days} days): take more or earlier snapshots"
        )
    aucs = [r.metrics["auc"] for r in results]
    churn = {
        "auc": float(np.nanmean(aucs)),
        "brier": float(np.mean([r.metrics["brier"] for r in results])),
        "ece": float(np.mean([r.metrics["ece"] for r in results])),
        "auc_spread": float(np.nanmax(aucs) - np.nanmin(aucs)),
        "recency_auc": float(np.nanmean([r.metrics["recency_auc"] for r in results])),
        "bg_nbd_auc": float(np.nanmean([r.metrics["bg_nbd_auc"] for r in results])),
        "p_alive_auc": float(np.nanmean([r.metrics["p_alive_auc"] for r in results])),
        "rank_stability": float(np.nanmean(stabilities)) if stabilities else float("nan"),
        "dates": float(len(results)),
    }
    churn["auc_gain_over_recency"] = churn["auc"] - churn["recency_auc"]
    value = {
        name: {
            "spearman": float(np.nanmean([s for s, _ in pairs])),
            "top_decile": float(np.nanmean([t for _, t in pairs])),
        }
        for name, pairs in value_scores.items()
    }
    best = max(definition.value_candidates, key=lambda c: (np.nan_to_num(value[c]["spearman"], nan=-1.0), c))
    return Backtest(results, churn, value, best, curves)


@dataclass
class FinalModels:
    """What a run registers: the churn classifier and the chosen value model, fitted on every labelled
    snapshot (the value model on the latest one when it is BG/NBD: its fit needs no labels)."""

    churn_model: object
    value_model: BgNbdValue | GradientBoostingValue
    value_candidate: str
    training_rows: int


def fit_final(
    training_set: pd.DataFrame, definition: PredictionDefinition, value_candidate: str, seed: int = 0
) -> FinalModels:
    with threadpool_limits(**SINGLE_THREADED):
        return _fit_final(training_set, definition, value_candidate, seed)


def _fit_final(
    training_set: pd.DataFrame, definition: PredictionDefinition, value_candidate: str, seed: int
) -> FinalModels:
    rows = sample_rows(training_set, definition.max_training_rows, seed)
    churn = fit_churn_model(feature_matrix(rows, input_columns(definition)), rows["is_churned"], definition, seed)
    if value_candidate == "bg_nbd":
        latest = training_set[_dates(training_set) == _dates(training_set).max()]
        value = BgNbdValue(definition.horizon_days).fit(latest)
    else:
        value = GradientBoostingValue(definition.features, seed).fit(rows)
    return FinalModels(churn, value, value_candidate, len(rows))
