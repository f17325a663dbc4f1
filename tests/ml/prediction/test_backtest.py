"""Out-of-time back-tests on a planted training set: each date learns only from closed outcome windows, the
models find the planted signal and beat the baselines it was built to beat, and too little data is refused."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from ml.prediction import backtest as bt
from ml.prediction.definition import load_prediction_definition

DATES = pd.to_datetime(["2024-01-01", "2024-03-31", "2024-06-29", "2024-09-27"])  # 90 days apart


def planted_training_set(customers: int = 1_500, seed: int = 0) -> pd.DataFrame:
    """Customers with a buying rate; at each date the churn label follows a planted logistic model of the
    order rate and the days since the last order, and future revenue follows the rate."""
    definition = load_prediction_definition()
    rng = np.random.default_rng(seed)
    rate = rng.gamma(1.0, 1 / 60, customers)  # orders per day
    rows = []
    for k, day in enumerate(DATES):
        age = 400 + 90 * k + rng.integers(0, 30, customers)
        frequency = 1 + rng.poisson(rate * age)
        recency = np.minimum(rng.exponential(1 / np.maximum(rate, 1e-3)), age).round()
        logit = -1.0 + 0.01 * recency - 40 * rate
        churned = rng.random(customers) < 1 / (1 + np.exp(-logit))
        future_orders = np.where(churned, 0, 1 + rng.poisson(rate * 60))
        aov = rng.gamma(4.0, 15.0, customers)
        frame = pd.DataFrame({f: rng.normal(size=customers) for f in definition.features})
        frame = frame.assign(
            customer_id=[f"cus_{i:05d}" for i in range(customers)],
            as_of_date=day,
            frequency=frequency,
            recency_days=recency,
            days_since_first_order=age,
            aov_base=aov,
            order_rate_per_year=frequency * 365 / age,
            is_churned=churned,
            future_orders=future_orders,
            future_revenue_base=future_orders * aov,
            past_window_orders=rng.poisson(rate * 90),
        )
        frame["past_window_revenue_base"] = frame["past_window_orders"] * aov
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def training_set():
    return planted_training_set()


@pytest.fixture(scope="module")
def backtested(training_set):
    """The back-test's result and the latest snapshot date of each training set it fitted on."""
    seen = []
    real = bt.sample_rows

    def spy(frame, limit, seed):
        seen.append(pd.to_datetime(frame["as_of_date"]).max())
        return real(frame, limit, seed)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bt, "sample_rows", spy)
        result = bt.backtest(training_set, load_prediction_definition())
    return result, seen


def test_each_date_learns_only_from_windows_closed_before_it(training_set, backtested):
    definition = load_prediction_definition()
    result, seen = backtested
    assert [r.as_of_date for r in result.dates] == [str(d.date()) for d in DATES[-definition.evaluate_last :]]
    horizon = pd.Timedelta(days=definition.horizon_days)
    for r, latest_training_date in zip(result.dates, seen, strict=True):
        assert latest_training_date + horizon <= pd.Timestamp(r.as_of_date)
        assert r.train_rows == (pd.to_datetime(training_set["as_of_date"]) + horizon <= r.as_of_date).sum()


def test_models_find_the_planted_signal(backtested):
    result, _ = backtested
    assert result.churn["auc"] > 0.75
    assert result.churn["auc"] > result.churn["recency_auc"]  # the planted rate matters beside recency
    assert result.churn["ece"] < 0.08
    assert result.value["gradient_boosting"]["spearman"] > result.value[bt.LAST_PERIOD]["spearman"]
    assert result.best_value_candidate in ("bg_nbd", "gradient_boosting")
    assert set(result.to_json(load_prediction_definition())) >= {"dates", "churn", "value", "churn_gate_failures"}


def test_too_few_snapshots_are_refused_with_a_reason(training_set):
    one_date = training_set[training_set["as_of_date"] == DATES[-1]]
    with pytest.raises(bt.BacktestError, match="closed outcome window"):
        bt.backtest(one_date, load_prediction_definition())


def test_training_rows_are_sampled_evenly_across_dates(training_set):
    sample = bt.sample_rows(training_set, 2_000, seed=0)
    per_date = sample.groupby("as_of_date").size()
    assert per_date.sum() == pytest.approx(2_000, abs=4) and per_date.max() - per_date.min() <= 2


def test_final_models_score_every_row(training_set):
    definition = dataclasses.replace(load_prediction_definition(), max_training_rows=3_000)
    final = bt.fit_final(training_set, definition, "gradient_boosting")
    assert final.training_rows <= 3_000
    predicted = final.value_model.predict(training_set.head(50))
    assert (predicted["expected_revenue_base"] >= 0).all() and len(predicted) == 50


def test_evaluated_customers_are_capped_to_the_same_customers_at_every_date(training_set):
    definition = dataclasses.replace(load_prediction_definition(), max_evaluated_customers=1_000)
    capped = bt.backtest(training_set, definition)
    assert [r.test_rows for r in capped.dates] == [1_000] * definition.evaluate_last
    chosen = [
        set(bt.evaluated_rows(training_set[training_set["as_of_date"] == day], 1_000)["customer_id"]) for day in DATES
    ]
    assert all(c == chosen[0] for c in chosen) and len(chosen[0]) == 1_000
    assert set(capped.curves["customer_id"]) == chosen[0]
    assert bt.evaluated_rows(training_set, None) is training_set
