"""Fallback segments: who the behavioural model may not place, and what they get instead.

No customer is left without a segment. A customer without profiling consent is never profiled;
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
}


def fallback_reasons(features: pd.DataFrame, definition) -> pd.Series:
    """Per customer: the fallback reason code, or None when the model may place them.
    Consent comes first: a customer without consent is not profiled, whatever their history."""
    reasons = pd.Series([None] * len(features), index=features.index, dtype=object)
    orders = pd.to_numeric(features["frequency"], errors="coerce").fillna(0).to_numpy()
    reasons[orders < definition.min_orders] = "insufficient_history"
    if definition.require_profiling_consent:
        consent = features["has_profiling_consent"].fillna(False).astype(bool).to_numpy()
        reasons[~consent] = "no_profiling_consent"
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
