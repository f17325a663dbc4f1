"""The predictive segment family: one segment per customer, the first matching rule, fallbacks with reasons,
model and definition versions on every row, and profiles that carry churn rate, predicted value and growth."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.prediction.definition import load_prediction_definition
from ml.prediction.segments import PredictiveFamily, combined_version
from ml.segmentation.rfm import MODEL_NAME, RFM_RULES_VERSION, recency_scores_against, rfm_assignments, score_rfm
from ml.segmentation.store import PREDICTIONS_TABLE, PROFILES_TABLE, family_rows, write_assignments, write_profiles
from tests.ml.segmentation.fixtures import planted_features
from warehouse.tables import ensure_tables

DEFINITION = load_prediction_definition()


def features() -> pd.DataFrame:
    """Planted buyers, some without a completed order and some without profiling consent."""
    df, _ = planted_features(n_per_group=60, seed=3)
    df.loc[df.index % 13 == 0, ["frequency", "monetary_base", "aov_base"]] = [0, 0.0, np.nan]
    df.loc[df.index % 13 == 0, ["recency_days", "days_since_first_order"]] = np.nan
    df["has_profiling_consent"] = df.index % 10 != 0
    df["profiling_basis"] = np.where(df["has_profiling_consent"], "consent", "none")
    return df


def predictions(df: pd.DataFrame, definition=DEFINITION) -> pd.DataFrame:
    """What the prediction step writes: figures for the predictable, the reason for the rest; three customers
    missing and two predicted under another definition version."""
    rng = np.random.default_rng(7)
    too_few = np.where(df["frequency"] < 1, "insufficient_history", None)
    reason = np.where(~df["has_profiling_consent"], "no_profiling_consent", too_few)
    predicted = pd.isna(reason)
    out = pd.DataFrame(
        {
            "customer_id": df["customer_id"],
            "as_of_date": pd.Timestamp("2026-01-01"),
            "horizon_days": definition.horizon_days,
            "churn_probability": np.where(predicted, rng.uniform(0, 1, len(df)), np.nan),
            "expected_orders": np.where(predicted, rng.gamma(2, 1, len(df)), np.nan),
            "expected_revenue_base": np.where(predicted, rng.gamma(2, 80, len(df)), np.nan),
            "not_predicted_reason": reason,
            "churn_model_version": "3",
            "value_model_version": "2",
            "definition_version": definition.version,
            "predicted_at": pd.Timestamp("2026-01-01"),
            "dagster_run_id": "run-p",
        }
    )
    open_ids = out.index[predicted]
    out.loc[open_ids[:2], "definition_version"] = "0.9.0"
    return out.drop(index=open_ids[2:5]).reset_index(drop=True)


def rfm_rows(df: pd.DataFrame) -> pd.DataFrame:
    return rfm_assignments(df, ~df["has_profiling_consent"].to_numpy())


def test_recency_scored_against_the_scored_customers_reproduces_their_own_scores():
    df = features()
    buyers = df[df["frequency"] > 0]
    scores = score_rfm(buyers)["r_score"].to_numpy()
    recency = buyers["recency_days"].to_numpy()
    assert (recency_scores_against(recency, recency) == scores).all()
    # without an order for longer, nobody's R score rises, and long absence falls to the lowest score
    later = recency_scores_against(recency, recency + DEFINITION.horizon_days)
    assert (later <= scores).all() and (recency_scores_against(recency, recency + 10_000) == 1).all()


def _oracle(row: dict, measured: dict) -> str:
    """The first segment whose conditions all hold, evaluated one row at a time (the test's own reading of the
    rule language: min/max inclusive, in/not_in, a missing number fails)."""
    for segment in DEFINITION.segments:
        ok = True
        for c in segment.conditions:
            value = measured[c.measure]
            if c.keys:
                ok &= (value in c.keys) != c.negate
            else:
                ok &= value is not None and not pd.isna(value)
                ok &= ok and (c.low is None or value >= c.low) and (c.high is None or value <= c.high)
        if ok:
            return segment.key
    raise AssertionError("the last segment takes every customer")


def test_every_customer_gets_one_predictive_segment_by_the_first_matching_rule():
    from ml.prediction.segments import measures

    df = features()
    preds = predictions(df)
    rfm = rfm_rows(df)
    rows = PredictiveFamily(DEFINITION, preds).assign(df, rfm)
    assert len(rows) == len(df) and rows["customer_id"].is_unique
    assert set(rows["segment_family"]) == {"predictive"}
    assert set(rows["model_name"]) == {"churn_model+value_model"} and set(rows["model_version"]) == {"3+2"}
    assert set(rows["definition_version"]) == {DEFINITION.version}

    # the predicted customers, each placed as the oracle reads the rules on the measures
    merged = (
        df.merge(preds, on="customer_id")
        .merge(rfm[["customer_id", "segment_key", "r_score", "f_score", "m_score"]], on="customer_id")
        .rename(columns={"segment_key": "rfm_segment"})
    )
    merged = merged[merged["not_predicted_reason"].isna() & (merged["definition_version"] == DEFINITION.version)]
    scored = df.merge(rfm, on="customer_id")
    scored_recency = scored.loc[scored["r_score"].fillna(0) > 0, "recency_days"].to_numpy(dtype="float64")
    measured = measures(merged.reset_index(drop=True), scored_recency, DEFINITION)
    expected = [_oracle(r, m) for r, m in zip(merged.to_dict("records"), measured.to_dict("records"), strict=True)]
    got = rows.set_index("customer_id").loc[merged["customer_id"], "segment_key"].astype(str).tolist()
    assert got == expected
    assert len(set(expected)) >= 4  # the fixture reaches several segments, not one catch-all
    assert not rows.set_index("customer_id").loc[merged["customer_id"], "is_fallback"].any()
    # a measured churn risk >= 0.6 and top-fifth past spend is the first rule
    top = (measured["churn_probability"] >= 0.6) & (measured["spend_percentile"] >= 0.8)
    assert top.any() and {expected[i] for i in np.flatnonzero(top)} == {"pred_likely_to_churn_high_value"}


def test_customers_without_a_current_prediction_get_a_fallback_with_the_reason():
    df = features()
    preds = predictions(df)
    rows = PredictiveFamily(DEFINITION, preds).assign(df, rfm_rows(df)).set_index("customer_id")
    no_consent = df.loc[~df["has_profiling_consent"], "customer_id"]
    assert (rows.loc[no_consent, "segment_key"] == "fallback_not_profiled").all()
    assert (rows.loc[no_consent, "fallback_reason"] == "no_profiling_consent").all()
    missing = sorted(set(df["customer_id"]) - set(preds["customer_id"]))
    stale = preds.loc[preds["definition_version"] != DEFINITION.version, "customer_id"]
    assert len(missing) == 3 and len(stale) == 2
    for ids in (missing, stale):
        assert (rows.loc[ids, "segment_key"] == "fallback_no_prediction").all()
        assert rows.loc[ids, "is_fallback"].all()
        assert (rows.loc[ids, "fallback_reason"] == "no_current_prediction").all()
        assert rows.loc[ids, "reason"].str.startswith("fallback: ").all()


def test_without_champions_every_row_says_so_and_the_version_is_none():
    df = features()
    preds = predictions(df).assign(churn_probability=np.nan, expected_revenue_base=np.nan, value_model_version=None)
    preds["not_predicted_reason"] = preds["not_predicted_reason"].fillna("no_champion_model")
    rows = PredictiveFamily(DEFINITION, preds).assign(df, rfm_rows(df))
    assert set(rows["model_version"]) == {"none"}
    assert rows["is_fallback"].all() and "fallback_no_model_yet" in set(rows["segment_key"])
    assert combined_version("3", None) == "none" and combined_version("3", "2") == "3+2"


def test_profiles_of_every_family_carry_churn_rate_predicted_value_and_growth():
    df = features()
    preds = predictions(df)
    rfm = rfm_rows(df)
    con = duckdb.connect()
    con.execute("create schema marts")
    con.register("_f", df)
    con.execute("create table marts.customer_features as select * from _f")
    ensure_tables(con, PREDICTIONS_TABLE)
    con.register("_p", preds)
    con.execute(f"insert into {PREDICTIONS_TABLE} by name select * from _p")
    predictive = PredictiveFamily(DEFINITION, preds).assign(df, rfm)
    rfm_family = family_rows(
        rfm, family="rfm", model_name=MODEL_NAME, model_version=RFM_RULES_VERSION, definition_version=RFM_RULES_VERSION
    )
    write_assignments(con, [rfm_family, predictive], run_id="run-1")
    write_profiles(con, "run-1")
    profiles = con.execute(
        f"select segment_family, segment_key, predicted_customers, churn_rate, avg_expected_revenue_base, "
        f"value_growth from {PROFILES_TABLE}"
    ).df()
    assert set(profiles["segment_family"]) == {"rfm", "predictive"}
    # recomputed here in pandas from the same frames
    current = preds[preds["definition_version"] == DEFINITION.version]
    joined = (
        predictive[["customer_id", "segment_key"]]
        .merge(current, on="customer_id", how="left")
        .merge(df[["customer_id", "monetary_base", "days_since_first_order"]], on="customer_id")
    )
    joined = joined[joined["expected_revenue_base"].notna()]
    for key, group in joined.groupby("segment_key", observed=True):
        row = profiles[(profiles["segment_family"] == "predictive") & (profiles["segment_key"] == key)].iloc[0]
        horizon = DEFINITION.horizon_days
        past = (group["monetary_base"] * horizon / np.maximum(group["days_since_first_order"], horizon)).sum()
        assert row["predicted_customers"] == len(group)
        assert row["churn_rate"] == pytest.approx(group["churn_probability"].mean())
        assert row["avg_expected_revenue_base"] == pytest.approx(group["expected_revenue_base"].mean())
        assert row["value_growth"] == pytest.approx(group["expected_revenue_base"].sum() / past - 1)
    not_profiled = profiles[profiles["segment_key"] == "fallback_not_profiled"].iloc[0]
    assert not_profiled["predicted_customers"] == 0 and pd.isna(not_profiled["churn_rate"])
    # the rfm family's profiles get the same columns (the stale predictions count too: they are figures)
    champions = profiles[profiles["segment_key"] == "rfm_champions"].iloc[0]
    assert champions["predicted_customers"] > 0 and 0 < champions["churn_rate"] < 1
