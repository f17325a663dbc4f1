"""RFM scores and named RFM segments (the `rfm` segment family), rules as code.

Scores are quintiles 1..5 among the scored customers with at least one completed order (recency: more
recent = higher). Customers without a completed order get r = f = m = 0 and the segment "No purchase
yet". The named segments come from an ordered rule table: the first rule that matches names the
customer, so every customer gets exactly one.

The rule table is versioned like the YAML segment definitions: `RFM_RULES_VERSION` travels with every
rfm assignment row and is recorded in `ml.segment_definitions`; `RFM_RULES_LOCK` holds the content
digest of every released version, and the unit tests refuse a rule table whose content differs from
the digest recorded for its version (change the rules -> bump the version and record the new digest).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ml.versioning import content_digest


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
OTHERS = "Others"  # buyers no rule names
NOT_PROFILED = "Not profiled"  # customers without a lawful basis for profiling: never scored

FAMILY = "rfm"
MODEL_NAME = "rfm_rules"  # the model_name of rfm assignment rows
RFM_RULES_VERSION = "1.2.0"
# Content digest (`rule_table().content_sha256`) of every released version of the rule table.
RFM_RULES_LOCK = {
    "1.0.0": "17837f3670265020e85a56c2885c634d00707202f5a26e1d240e84b18d4ab7c8",
    "1.1.0": "f5a4a69594752795e0afeacdae2e93b1f68ca54c9298983c079d22c8ec44f9f1",  # scores share ties
    "1.2.0": "868729527a3865921e5cd81fdf3638a27ac4a891ef13057c7156f154adf49d19",  # monetary_eur -> monetary_base
}
SCORING = (
    "r, f, m: quintiles 1..5 (rank / n * 5, rounded up; equal values share the lowest rank of their tie, so one "
    "score) of recency_days (lower = higher score), frequency and monetary_base among scored customers with at "
    "least one completed order; 0 without one"
)


def segment_key(name: str, prefix: str = "rfm") -> str:
    """`<prefix>_` + slug of the segment name: "Cannot Lose Them" -> rfm_cannot_lose_them."""
    return f"{prefix}_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def rfm_segment_keys() -> tuple[str, ...]:
    """Every key an rfm assignment can carry: the rules', then no purchase, others, not profiled."""
    return tuple(segment_key(n) for n in (*(r.name for r in RFM_RULES), NO_PURCHASE, OTHERS, NOT_PROFILED))


@dataclass(frozen=True)
class RfmRuleTable:
    """The rule table as a segment definition (what `ml.segmentation.store.write_definition` records)."""

    name: str
    version: str
    family: str
    description: str
    content_sha256: str
    raw: dict[str, Any] = field(hash=False, compare=False)


def rule_table_content(rules: tuple[RfmRule, ...] = RFM_RULES) -> dict[str, Any]:
    """Everything that decides an rfm assignment, as plain data (without the version)."""
    return {
        "name": "rfm",
        "family": FAMILY,
        "description": "Named RFM segments: the first rule whose score ranges match names the customer.",
        "scoring": SCORING,
        "rules": [
            {
                "name": r.name,
                "key": segment_key(r.name),
                "description": r.description,
                "r": list(r.r),
                "f": list(r.f),
                "m": list(r.m),
            }
            for r in rules
        ],
        "no_purchase": {"name": NO_PURCHASE, "key": segment_key(NO_PURCHASE)},
        "others": {"name": OTHERS, "key": segment_key(OTHERS)},
        "not_profiled": {"name": NOT_PROFILED, "key": segment_key(NOT_PROFILED)},
    }


def rule_table(rules: tuple[RfmRule, ...] = RFM_RULES, version: str = RFM_RULES_VERSION) -> RfmRuleTable:
    """The versioned rule table; its digest is sha256 of the canonical JSON content without the version
    (the same convention as the YAML definitions)."""
    body = rule_table_content(rules)
    digest = content_digest(body)
    return RfmRuleTable(
        name=body["name"],
        version=version,
        family=FAMILY,
        description=body["description"],
        content_sha256=digest,
        raw={**body, "version": version},
    )


def _quintile(values: pd.Series, ascending: bool) -> pd.Series:
    """Scores 1..5 by rank; equal values share the lowest rank of their tie, so they get one score
    (breaking ties by position spread 13,848 one-time buyers of a real shop evenly over F = 1..5, and
    named some of them "Champions"): when most customers bought once, they all score F = 1."""
    ranks = values.rank(method="min", ascending=ascending)
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
        m[idx] = _quintile(sub["monetary_base"].astype(float), ascending=True).to_numpy()
    out["r_score"], out["f_score"], out["m_score"] = r, f, m
    out["rfm_segment"] = name_segments(r, f, m)
    return out


def name_segments(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The segment name of every (r, f, m): the first matching rule; "Others" when none does, and
    `NO_PURCHASE` where r is 0 (no completed order)."""
    buyers = np.asarray(r) > 0
    segment = np.full(len(buyers), NO_PURCHASE, dtype=object)
    unassigned = buyers.copy()
    for rule in RFM_RULES:
        hit = (
            unassigned
            & (r >= rule.r[0])
            & (r <= rule.r[1])
            & (f >= rule.f[0])
            & (f <= rule.f[1])
            & (m >= rule.m[0])
            & (m <= rule.m[1])
        )
        segment[hit] = rule.name
        unassigned &= ~hit
    segment[unassigned] = OTHERS
    return segment


def recency_scores_against(scored_recency: np.ndarray, recency: np.ndarray) -> np.ndarray:
    """The R score each value of `recency` would get among `scored_recency` (the recency of the customers
    a run scored), by the same rule as `score_rfm`: rank 1 + the number of scored values above it. With
    `recency + days` it says where a customer falls if they place no order for `days` more days, against
    today's score boundaries."""
    ordered = np.sort(np.asarray(scored_recency, dtype=float))
    n = len(ordered)
    if n == 0:
        return np.zeros(len(recency), dtype=int)
    rank = n - np.searchsorted(ordered, np.asarray(recency, dtype=float), side="right") + 1
    return np.ceil(rank / n * 5).clip(1, 5).astype(int)


def _rule_reason(rule: RfmRule | None, r: int, f: int, m: int, name: str) -> str:
    if name == NO_PURCHASE:
        return "no completed order yet"
    described = rule.description if rule is not None else "no RFM rule matches these scores"
    return f"R={r} F={f} M={m}: {described}"


def _labelled(codes: np.ndarray, labels: list[str]) -> pd.Categorical:
    """A categorical whose row i reads `labels[codes[i]]`: one string per label, not one per customer."""
    categories, inverse = np.unique(np.array(labels, dtype=object), return_inverse=True)
    return pd.Categorical.from_codes(inverse[codes], categories=categories)


def _categorical(values: np.ndarray, label) -> pd.Categorical:
    """`label(v)` for every value, computed once per distinct value."""
    codes, uniques = pd.factorize(values)
    return _labelled(codes, [label(u) for u in uniques])


def _rule_reasons(scored: pd.DataFrame, by_name: dict[str, RfmRule]) -> pd.Categorical:
    """The reason text of every scored row, built once per distinct (segment, R, F, M): at most a few
    hundred strings however many customers."""
    combos = scored[["rfm_segment", "r_score", "f_score", "m_score"]]
    codes = combos.groupby(list(combos.columns), sort=False).ngroup().to_numpy()
    firsts = combos.drop_duplicates()  # in order of first appearance, like the group numbers
    return _labelled(codes, [_rule_reason(by_name.get(n), r, f, m, n) for n, r, f, m in firsts.itertuples(index=False)])


def rfm_assignments(
    features: pd.DataFrame,
    not_profiled: pd.Series | np.ndarray | None = None,
    objected: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """One rfm-family row per customer of `features`: customer_id, segment_key, segment_name, reason
    (scores and the rule text), r/f/m_score, is_fallback, fallback_reason.

    Customers flagged in `not_profiled` (no lawful basis for profiling) are not scored at all: they are
    left out of the quintiles, get null scores and the fallback segment "Not profiled" with reason code
    `no_profiling_consent`, or `profiling_objection` for those also flagged in `objected` (they refused
    or withdrew consent). The rest are scored among themselves by `score_rfm`.
    """
    mask = np.zeros(len(features), dtype=bool) if not_profiled is None else np.asarray(not_profiled, dtype=bool)
    objection = np.zeros(len(features), dtype=bool) if objected is None else np.asarray(objected, dtype=bool)
    by_name = {rule.name: rule for rule in RFM_RULES}
    profiled = features.loc[~mask]
    scored = (
        score_rfm(profiled)
        if len(profiled)
        else pd.DataFrame(columns=["customer_id", "r_score", "f_score", "m_score", "rfm_segment"])
    )
    names = scored["rfm_segment"].to_numpy()
    rows = pd.DataFrame(
        {
            "customer_id": scored["customer_id"].to_numpy(),
            "segment_key": _categorical(names, segment_key),
            "segment_name": pd.Categorical(names),
            "reason": _rule_reasons(scored, by_name),
            "r_score": pd.array(scored["r_score"], dtype="Int64"),
            "f_score": pd.array(scored["f_score"], dtype="Int64"),
            "m_score": pd.array(scored["m_score"], dtype="Int64"),
            "is_fallback": False,
            "fallback_reason": None,
        }
    )
    skipped = features.loc[mask, "customer_id"].to_numpy()
    refused = objection[mask]
    fallback = pd.DataFrame(
        {
            "customer_id": skipped,
            "segment_key": segment_key(NOT_PROFILED),
            "segment_name": NOT_PROFILED,
            "reason": np.where(
                refused,
                "fallback: objected to profiling: not scored",
                "fallback: no lawful basis for profiling (no consent): not scored",
            ),
            "r_score": pd.array([None] * len(skipped), dtype="Int64"),
            "f_score": pd.array([None] * len(skipped), dtype="Int64"),
            "m_score": pd.array([None] * len(skipped), dtype="Int64"),
            "is_fallback": True,
            "fallback_reason": np.where(refused, "profiling_objection", "no_profiling_consent"),
        }
    )
    frames = [f for f in (rows, fallback) if len(f)]
    if not frames:
        return rows
    return _concat_keeping_categories(frames).astype({"is_fallback": bool, "fallback_reason": object})


def _concat_keeping_categories(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """`pd.concat` of frames with the same columns, where the text columns that are categoricals in the
    first frame stay categoricals: plain `pd.concat` turns categoricals with different categories back
    into one string per row (a million reason strings when some customers lack consent)."""
    first = frames[0]
    categorical = [c for c in first.columns if isinstance(first[c].dtype, pd.CategoricalDtype)]
    out = pd.concat([f.drop(columns=categorical) for f in frames], ignore_index=True)
    for column in categorical:
        out[column] = union_categoricals([pd.Categorical(f[column]) for f in frames])
    return out[list(first.columns)]
