"""RFM scores and named lifecycle segments, rules as code.

Scores are quintiles 1..5 among customers with at least one completed order (recency: more recent =
higher). Customers without a completed order get r = f = m = 0 and the segment "No purchase yet".
The named segments come from an ordered rule table: the first rule that matches names the customer,
so every customer gets exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RfmRule:
    name: str
    description: str
    r: tuple[int, int]  # inclusive score ranges
    f: tuple[int, int]
    m: tuple[int, int] = (1, 5)


# Order matters: first match wins (a classic RFM segment map, simplified to readable ranges).
RFM_RULES: tuple[RfmRule, ...] = (
    RfmRule("Champions", "bought recently, buy often and spend the most", (5, 5), (4, 5)),
    RfmRule("Loyal", "buy regularly and recently", (3, 5), (4, 5)),
    RfmRule("Cannot Lose Them", "used to buy often and a lot, not for a long time", (1, 2), (4, 5), (4, 5)),
    RfmRule("At Risk", "bought often in the past, not recently", (1, 2), (3, 5)),
    RfmRule("New", "first purchases very recently", (5, 5), (1, 1)),
    RfmRule("Potential Loyalists", "recent customers with a few purchases", (4, 5), (1, 3)),
    RfmRule("Need Attention", "average recency and frequency", (3, 3), (1, 3)),
    RfmRule("Hibernating", "last purchase long ago, few purchases", (1, 2), (1, 2)),
)
NO_PURCHASE = "No purchase yet"


def _quintile(values: pd.Series, ascending: bool) -> pd.Series:
    """Scores 1..5 by rank (ties broken by position so equal splits stay deterministic)."""
    ranks = values.rank(method="first", ascending=ascending)
    return np.ceil(ranks / len(values) * 5).clip(1, 5).astype(int)


def score_rfm(features: pd.DataFrame) -> pd.DataFrame:
    """customer_id, r_score, f_score, m_score, rfm_segment for every row of `features`."""
    out = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()})
    buyers = features["frequency"].fillna(0).to_numpy() > 0
    r = np.zeros(len(features), dtype=int)
    f = np.zeros(len(features), dtype=int)
    m = np.zeros(len(features), dtype=int)
    if buyers.any():
        sub = features.loc[buyers]
        # lower recency_days = more recent = higher score; order by id first for determinism
        order = np.argsort(sub["customer_id"].to_numpy(), kind="stable")
        sub = sub.iloc[order]
        idx = np.flatnonzero(buyers)[order]
        r[idx] = _quintile(sub["recency_days"].astype(float), ascending=False).to_numpy()
        f[idx] = _quintile(sub["frequency"].astype(float), ascending=True).to_numpy()
        m[idx] = _quintile(sub["monetary_eur"].astype(float), ascending=True).to_numpy()
    segment = np.full(len(features), NO_PURCHASE, dtype=object)
    unassigned = buyers.copy()
    for rule in RFM_RULES:
        hit = (
            unassigned
            & (r >= rule.r[0]) & (r <= rule.r[1])
            & (f >= rule.f[0]) & (f <= rule.f[1])
            & (m >= rule.m[0]) & (m <= rule.m[1])
        )
        segment[hit] = rule.name
        unassigned &= ~hit
    segment[unassigned] = "Others"
    out["r_score"], out["f_score"], out["m_score"], out["rfm_segment"] = r, f, m, segment
    return out
