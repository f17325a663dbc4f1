"""Fallback segments: consent first, then history; every customer gets exactly one reason or none."""

import pandas as pd

from ml.segmentation.definition import load_definition
from ml.segmentation.fallback import FALLBACKS, fallback_assignments, fallback_reasons


def test_lawful_basis_comes_before_history_and_eligible_customers_get_none():
    features = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f", "g"],
            "frequency": [5, 0, 0, 3, 4, 4, 0],
            "profiling_basis": ["consent", "consent", "none", None, "objected", "legitimate_interest", "contract"],
            "lineless_order_count": [0, 0, 0, 0, 0, 0, 0],
        }
    )
    reasons = fallback_reasons(features, load_definition())
    assert reasons.tolist() == [
        None,
        "insufficient_history",
        "no_profiling_consent",
        "no_profiling_consent",  # no basis recorded is no basis
        "profiling_objection",
        None,  # the project's legitimate interest is a basis
        "insufficient_history",  # a contract is one too: only the history is missing
    ]
    assert FALLBACKS["profiling_objection"][1] == "Not profiled (objected)"


def test_fallback_rows_carry_key_name_reason_and_flag():
    rows = fallback_assignments(pd.Series(["a", "b"]), ["insufficient_history", "no_champion_model"])
    assert rows["is_fallback"].all()
    assert rows["segment_key"].tolist() == [FALLBACKS["insufficient_history"][0], FALLBACKS["no_champion_model"][0]]
    assert rows["reason"].str.startswith("fallback: ").all()


def test_customers_whose_orders_all_lack_lines_are_a_data_problem_not_a_segment():
    features = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "frequency": [3, 3, 0],
            "profiling_basis": ["consent", "consent", "consent"],
            "lineless_order_count": [3, 1, 0],
        }
    )
    reasons = fallback_reasons(features, load_definition())
    # every order without lines: a data problem; some lines missing: placed on what is there
    assert reasons.tolist() == ["incomplete_order_data", None, "insufficient_history"]
    assert FALLBACKS["incomplete_order_data"][1] == "Data problem (orders without lines)"
