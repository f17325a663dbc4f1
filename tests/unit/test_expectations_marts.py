"""Mart and segment suites: a clean frame passes, each deliberate defect blocks (or only warns)."""

from __future__ import annotations

import pandas as pd
import pytest

from expectations.suites.marts import build_customer_features_suite, build_customer_segments_suite, build_orders_suite
from expectations.validate import validate

N = 50


def orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(N)],
            "customer_id": [f"cus_{i % 10:016x}" for i in range(N)],
            "fx_rate_to_eur": 1.0,
            "net_revenue_eur": 40.0,
            "status": ["completed"] * (N - 5) + ["returned"] * 5,
            "ordered_at": pd.Timestamp.now() - pd.Timedelta(days=3),
        }
    )


def segments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"cus_{i:016x}" for i in range(N)],
            "segment_family": "behavioural",
            "segment_key": [f"behavioural_s{i % 4}" for i in range(N)],
            "segment_name": [f"S{i % 4}" for i in range(N)],
            "r_score": 3, "f_score": 3, "m_score": 3, "rfm_segment": "Loyal",
            "model_name": "customer_segmentation", "model_version": "2", "definition_version": "0.1.0",
            "assigned_at": pd.Timestamp("2026-01-01"), "reason": "nearest centroid", "is_fallback": False,
            "fallback_reason": None, "dagster_run_id": "r",
        }
    )


def features() -> pd.DataFrame:
    df = pd.DataFrame({"customer_id": [f"cus_{i:016x}" for i in range(N)], "as_of_date": pd.Timestamp("2026-10-31")})
    for col, value in {"frequency": 3, "monetary_eur": 100.0, "recency_days": 20, "avg_csat": 4.0}.items():
        df[col] = value
    for col in ("share_web", "share_app", "share_store", "share_phone", "discount_share"):
        df[col] = 0.25
    return df


@pytest.mark.parametrize("frame, build", [(orders, build_orders_suite), (segments, build_customer_segments_suite), (features, build_customer_features_suite)])
def test_clean_frames_pass(frame, build):
    outcome = validate(frame(), build())
    assert outcome.success, [r for r in outcome.results if not r.success]


def test_negative_revenue_blocks():
    df = orders()
    df.loc[3, "net_revenue_eur"] = -5
    assert validate(df, build_orders_suite()).blocking


def test_pii_in_segments_blocks():
    df = segments()
    df["email"] = "someone@example.org"
    outcome = validate(df, build_customer_segments_suite())
    assert outcome.blocking
    assert "expect_table_columns_to_match_set" in {r.expectation for r in outcome.results if not r.success}


def test_two_model_versions_block():
    df = segments()
    df.loc[0, "model_version"] = "1"
    assert validate(df, build_customer_segments_suite()).blocking


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
