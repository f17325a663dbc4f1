"""Fallback segments: who the behavioural model may not place, and what they get instead.

No customer is left without a segment. A customer without a lawful basis for profiling (no consent
where the project requires consent) or who objected to it is never profiled;
a customer with too little history cannot be placed meaningfully; when no model has ever passed the
promotion gate there is no champion to place anyone. Each case is a fallback segment with a reason
code, flagged `is_fallback` on the assignment row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# reason code -> (segment key, human name, reason text)
FALLBACKS = {
    "no_profiling_consent": (
        "fallback_not_profiled",
        "Not profiled (no consent)",
        "no profiling consent: not profiled",
    ),
    "profiling_objection": (
        "fallback_objected",
        "Not profiled (objected)",
        "refused or withdrew consent to profiling: not profiled, whatever the project's basis",
    ),
    "incomplete_order_data": (
        "fallback_data_problem",
        "Data problem (orders without lines)",
        "every completed order lacks its lines (quarantined at ingest): a data problem, not a behaviour; "
        "see `segments quarantine --table erp.order_lines`",
    ),
    "insufficient_history": (
        "fallback_too_little_history",
        "Too little history",
        "fewer completed orders than the definition's min_orders",
    ),
    "no_champion_model": (
        "fallback_no_model_yet",
        "Not segmented yet (no approved model)",
        "no model has passed the promotion gate yet",
    ),
    # the predictive family only (ml/prediction/segments.py)
    "no_current_prediction": (
        "fallback_no_prediction",
        "Not predicted (no current prediction)",
        "no prediction of this customer under the prediction definition in use (the prediction step has not "
        "scored them since the definition or the customer changed)",
    ),
}
NO_CURRENT_PREDICTION = "no_current_prediction"


NOT_PROFILED_REASONS = ("no_profiling_consent", "profiling_objection")


def fallback_reasons(features: pd.DataFrame, definition) -> pd.Series:
    """Per customer: the fallback reason code, or None when the model may place them.

    The lawful basis comes first: a customer without one (`profiling_basis` 'none': no consent where
    the project requires it) or who objected ('objected') is not profiled, whatever their history. A
    customer whose every completed order came without its lines (they were quarantined) is a data
    problem, reported as such instead of being clustered on missing values."""
    reasons = pd.Series([None] * len(features), index=features.index, dtype=object)
    orders = pd.to_numeric(features["frequency"], errors="coerce").fillna(0).to_numpy()
    reasons[orders < definition.min_orders] = "insufficient_history"
    # customers whose every completed order came without lines would form a "segment" of missing data
    lineless = pd.to_numeric(features["lineless_order_count"], errors="coerce").fillna(0).to_numpy()
    reasons[(orders > 0) & (lineless >= orders)] = "incomplete_order_data"
    if definition.require_lawful_basis:
        basis = features["profiling_basis"].fillna("none").to_numpy()
        reasons[basis == "none"] = "no_profiling_consent"
        reasons[basis == "objected"] = "profiling_objection"
    return reasons


def fallback_assignments(customer_ids: np.ndarray | pd.Series, reasons: pd.Series | list[str]) -> pd.DataFrame:
    """Assignment rows (customer_id, segment_key, segment_name, reason, is_fallback, fallback_reason)."""
    reasons = list(reasons)
    return pd.DataFrame(
        {
            "customer_id": np.asarray(customer_ids),
            "segment_key": [FALLBACKS[r][0] for r in reasons],
            "segment_name": [FALLBACKS[r][1] for r in reasons],
            "reason": [f"fallback: {FALLBACKS[r][2]}" for r in reasons],
            "is_fallback": True,
            "fallback_reason": reasons,
        }
    )
