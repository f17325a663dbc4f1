"""Mart and segment suites: a clean frame passes, each deliberate defect blocks (or only warns)."""

from __future__ import annotations

import pandas as pd
import pytest

from expectations.suites.marts import (
    build_customer_features_suite,
    build_customer_segments_suite,
    build_orders_suite,
    build_segment_profiles_suite,
)
from expectations.validate import validate

N = 50


def orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(N)],
            "customer_id": [f"cus_{i % 10:016x}" for i in range(N)],
            "fx_rate_to_base": 1.0,
            "net_revenue_base": 40.0,
            "status": ["completed"] * (N - 5) + ["returned"] * 5,
            "ordered_at": pd.Timestamp.now() - pd.Timedelta(days=3),
        }
    )


def segments() -> pd.DataFrame:
    """One behavioural, rfm and predictive row per customer, as segments.customer_segments serves them."""
    ids = [f"cus_{i:016x}" for i in range(N)]
    common = {
        "r_score": 3,
        "f_score": 3,
        "m_score": 3,
        "assigned_at": pd.Timestamp("2026-01-01"),
        "is_fallback": False,
        "fallback_reason": None,
        "dagster_run_id": "r",
    }
    behavioural = pd.DataFrame(
        {
            "customer_id": ids,
            "segment_family": "behavioural",
            "segment_key": [f"behavioural_s{i % 4}" for i in range(N)],
            "segment_name": [f"S{i % 4}" for i in range(N)],
            "model_name": "customer_segmentation",
            "model_version": "2",
            "definition_version": "0.1.0",
            "reason": "nearest centroid",
            **common,
        }
    )
    rfm = pd.DataFrame(
        {
            "customer_id": ids,
            "segment_family": "rfm",
            "segment_key": "rfm_need_attention",
            "segment_name": "Need Attention",
            "model_name": "rfm_rules",
            "model_version": "1.0.0",
            "definition_version": "1.0.0",
            "reason": "R=3 F=3 M=3: average recency and frequency",
            **common,
        }
    )
    predictive = rfm.assign(
        segment_family="predictive",
        segment_key="pred_mid_predicted_value",
        segment_name="Mid predicted value",
        model_name="churn_model+value_model",
        model_version="3+2",
        definition_version="1.1.0",
        reason="rule: predicted revenue percentile >= 0.4",
    )
    return pd.concat([behavioural, rfm, predictive], ignore_index=True)[
        [
            "customer_id",
            "segment_family",
            "segment_key",
            "segment_name",
            "r_score",
            "f_score",
            "m_score",
            "model_name",
            "model_version",
            "definition_version",
            "assigned_at",
            "reason",
            "is_fallback",
            "fallback_reason",
            "dagster_run_id",
        ]
    ]


def profiles() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dagster_run_id": "r",
            "profiled_at": pd.Timestamp("2026-01-01"),
            "segment_family": ["behavioural"] * 4 + ["rfm"] * 2,
            "segment_key": [f"behavioural_s{i}" for i in range(4)] + ["rfm_loyal", "rfm_champions"],
            "segment_name": [f"S{i}" for i in range(4)] + ["Loyal", "Champions"],
            "customers": [10, 10, 15, 15, 30, 20],
            "share": [0.2, 0.2, 0.3, 0.3, 0.6, 0.4],
            "avg_aov_base": 50.0,
            "avg_frequency": 3.0,
            "total_revenue_base": 1500.0,
            "avg_revenue_base": 150.0,
            "avg_tenure_days": 400.0,
            "avg_recency_days": 30.0,
            "avg_csat": 4.2,
            "model_version": ["2"] * 4 + ["1.0.0"] * 2,
            "definition_version": ["0.1.0"] * 4 + ["1.0.0"] * 2,
            "predicted_customers": [10, 8, 15, 0, 30, 20],
            "churn_rate": [0.1, 0.5, 0.9, None, 0.2, 0.3],
            "avg_expected_revenue_base": [20.0, 5.0, 1.0, None, 40.0, 90.0],
            "total_expected_revenue_base": [200.0, 40.0, 15.0, None, 1200.0, 1800.0],
            "value_growth": [0.4, -0.5, -0.95, None, 0.1, 0.0],
        }
    )


def features() -> pd.DataFrame:
    df = pd.DataFrame({"customer_id": [f"cus_{i:016x}" for i in range(N)], "as_of_date": pd.Timestamp("2026-10-31")})
    for col, value in {"frequency": 3, "monetary_base": 100.0, "recency_days": 20, "avg_csat": 4.0}.items():
        df[col] = value
    for col in (
        "share_web",
        "share_app",
        "share_store",
        "share_phone",
        "discount_share",
        "discounted_order_share",
        "return_rate",
        "event_app_share",
        "event_mobile_share",
    ):
        df[col] = 0.25
    for col, value in {
        "order_rate_per_year": 2.5,
        "days_since_first_order": 400,
        "last_activity_days": 5,
        "tickets_per_year": 0.5,
        "items_per_order": 2.0,
    }.items():
        df[col] = value
    return df


def test_activity_older_than_the_last_order_blocks():
    """last_activity_days is the later of last order and last visit: larger than recency is a leak or a bug."""
    df = features()
    df.loc[0, "last_activity_days"] = 90
    outcome = validate(df, build_customer_features_suite())
    assert outcome.blocking
    assert {r.expectation for r in outcome.results if not r.success} == {
        "expect_column_pair_values_a_to_be_greater_than_b"
    }


@pytest.mark.parametrize(
    "frame, build",
    [
        (orders, build_orders_suite),
        (segments, build_customer_segments_suite),
        (features, build_customer_features_suite),
        (profiles, build_segment_profiles_suite),
    ],
)
def test_clean_frames_pass(frame, build):
    outcome = validate(frame(), build())
    assert outcome.success, [r for r in outcome.results if not r.success]


def test_negative_revenue_blocks():
    df = orders()
    df.loc[3, "net_revenue_base"] = -5
    assert validate(df, build_orders_suite()).blocking


def test_pii_in_segments_blocks():
    df = segments()
    df["email"] = "someone@example.org"
    outcome = validate(df, build_customer_segments_suite())
    assert outcome.blocking
    assert "expect_table_columns_to_match_set" in {r.expectation for r in outcome.results if not r.success}


def test_two_model_versions_in_a_family_block():
    df = segments()
    df.loc[0, "model_version"] = "1"
    assert validate(df, build_customer_segments_suite()).blocking


def test_a_customer_twice_in_a_family_or_an_unknown_rfm_key_blocks():
    df = segments()
    assert validate(pd.concat([df, df.iloc[[0]]], ignore_index=True), build_customer_segments_suite()).blocking
    df.loc[df["segment_family"] == "rfm", "segment_key"] = "rfm_made_up"
    outcome = validate(df, build_customer_segments_suite())
    assert outcome.blocking
    assert {(r.expectation, r.column) for r in outcome.results if not r.success} == {
        ("expect_column_values_to_be_in_set", "segment_key")
    }


@pytest.mark.parametrize(
    ("column", "value"),
    [("share", 1.2), ("churn_rate", 1.3), ("value_growth", -1.5), ("predicted_customers", 11)],
)
def test_profile_proportions_out_of_range_or_more_predicted_than_members_block(column, value):
    df = profiles()
    df.loc[0, column] = value
    outcome = validate(df, build_segment_profiles_suite())
    assert outcome.blocking
    assert {r.column for r in outcome.results if not r.success} <= {column, None}


def test_share_out_of_range_blocks_and_mostly_lapsed_base_only_warns():
    df = features()
    df.loc[0, "share_web"] = 1.5
    assert validate(df, build_customer_features_suite()).blocking
    df = features()
    df["frequency"] = 0
    outcome = validate(df, build_customer_features_suite())
    assert not outcome.blocking and outcome.failed_warn == 1


def test_stale_orders_only_warn():
    df = orders()
    df["ordered_at"] = pd.Timestamp.now() - pd.Timedelta(days=400)
    outcome = validate(df, build_orders_suite())
    assert not outcome.blocking and outcome.failed_warn == 1


def test_fallback_segments_do_not_count_towards_the_seven_segment_limit():
    df = segments()
    behavioural = df["segment_family"] == "behavioural"
    idx = df.index[behavioural]
    df.loc[idx, "segment_key"] = [f"behavioural_s{i % 7}" for i in range(len(idx))]
    df.loc[idx[:2], ["segment_key", "is_fallback"]] = ["fallback_not_profiled", True]
    df.loc[idx[2:4], ["segment_key", "is_fallback"]] = ["fallback_too_little_history", True]
    outcome = validate(df, build_customer_segments_suite())
    assert outcome.success, [r for r in outcome.results if not r.success]
    df.loc[idx[4:6], "segment_key"] = "behavioural_s8"
    outcome = validate(df, build_customer_segments_suite())
    assert not outcome.blocking
    assert {(r.expectation, r.column) for r in outcome.results if not r.success} == {
        ("expect_column_unique_value_count_to_be_between", "segment_key")
    }
