"""Fallback segments: consent first, then history; every customer gets exactly one reason or none."""

import pandas as pd

from ml.segmentation.definition import load_definition
from ml.segmentation.fallback import FALLBACKS, fallback_assignments, fallback_reasons


def test_consent_comes_before_history_and_eligible_customers_get_none():
    features = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "frequency": [5, 0, 0, 3],
            "has_profiling_consent": [True, True, False, None],
        }
    )
    reasons = fallback_reasons(features, load_definition())
    assert reasons.tolist() == [None, "insufficient_history", "no_profiling_consent", "no_profiling_consent"]


def test_fallback_rows_carry_key_name_reason_and_flag():
    rows = fallback_assignments(pd.Series(["a", "b"]), ["insufficient_history", "no_champion_model"])
    assert rows["is_fallback"].all()
    assert rows["segment_key"].tolist() == [FALLBACKS["insufficient_history"][0], FALLBACKS["no_champion_model"][0]]
    assert rows["reason"].str.startswith("fallback: ").all()
