"""The rules that define each segment, in plain words (text only; the page escapes it).

Three shapes of definition are published in `segments.segment_definitions.content`:

- an RFM rule table (`rules: [{key, name, r: [lo, hi], f: [...], m: [...], description}]`): the first
  rule whose score ranges match names the customer;
- a prediction definition (`segments: [{name, description, when: {measure: {min, max} | {in|not_in}}}]`):
  the first segment whose conditions all hold, the last one takes the rest;
- a clustering definition (behavioural): its segments are learnt, and the rules a frontline team reads
  are the surrogate tree's leaves, carried by each assignment's `reason`
  ("rule: a <= 1 and b > 2; traits: ..."), turned into words here.

The words for the prediction measures repeat `ml/prediction/definition.py` (the report imports nothing
of `ml`): a measure not listed there is shown by its name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# What a feature or measure is, in words, and whether its values are shares (shown as percentages).
FEATURE_WORDS = {
    "recency_days": "days since the last order",
    "last_activity_days": "days since the last activity",
    "frequency": "orders",
    "monetary_base": "revenue (base currency)",
    "aov_base": "average order value (base currency)",
    "tenure_days": "days as a customer",
    "days_since_first_order": "days since the first order",
    "order_rate_per_year": "orders per year",
    "orders_last_90d": "orders in the last 90 days",
    "orders_prev_90d": "orders in the 90 days before",
    "frequency_trend": "change in orders (last 90 days vs the 90 before)",
    "category_breadth": "product categories bought",
    "items_per_order": "items per order",
    "discount_share": "share of revenue discounted",
    "discounted_order_share": "share of orders with a discount",
    "return_rate": "share of items returned",
    "share_web": "share of orders on the web",
    "share_app": "share of orders in the app",
    "share_store": "share of orders in a store",
    "share_phone": "share of orders by phone",
    "event_count": "site and app events",
    "event_app_share": "share of events in the app",
    "event_mobile_share": "share of events on mobile",
    "ticket_count": "support tickets",
    "tickets_per_year": "support tickets per year",
    "avg_csat": "average satisfaction score (CSAT)",
    "avg_resolution_hours": "hours to resolve a ticket",
    "review_count": "reviews written",
    "avg_review_score": "average review score",
    "low_review_count": "low reviews written",
}
PREDICTIVE_MEASURES = {
    "churn_probability": "churn probability",
    "value_percentile": "predicted revenue percentile",
    "spend_percentile": "past spend percentile",
    "value_growth": "predicted revenue growth over past revenue per horizon",
    "rfm_segment": "RFM segment now",
    "rfm_segment_if_no_order": "RFM segment without an order in the horizon",
}
SCORE_WORDS = {"r": "recency", "f": "frequency", "m": "spend"}
_CONDITION = re.compile(
    r"^\s*(?:(?P<low>-?[\d.]+(?:e-?\d+)?)\s*(?P<lop><=?)\s*)?(?P<feature>[a-z][a-z0-9_]*)\s*"
    r"(?P<op><=|>=|<|>|==)\s*(?P<value>-?[\d.]+(?:e-?\d+)?)\s*$"
)
_OP_WORDS = {"<=": "at most", "<": "under", ">": "over", ">=": "at least", "==": "exactly"}


@dataclass(frozen=True)
class SegmentRule:
    """One segment's rule in words: every one of `conditions` holds for its customers."""

    key: str | None
    name: str
    conditions: tuple[str, ...]
    note: str = ""


def _is_share(feature: str) -> bool:
    return feature.startswith("share_") or feature.endswith(("_share", "_rate"))


def _value(feature: str, text: str) -> str:
    number = float(text)
    if _is_share(feature) and 0 <= number <= 1:
        return f"{number * 100:.0f}%"
    return f"{number:,.2f}".rstrip("0").rstrip(".")


def feature_words(feature: str) -> str:
    return FEATURE_WORDS.get(feature, feature.replace("_base", " (base currency)").replace("_", " "))


def condition_words(condition: str) -> str:
    """`last_activity_days <= 463.5` -> `days since the last activity at most 463.5`; text it cannot read
    comes back unchanged."""
    m = _CONDITION.match(condition)
    if not m:
        return condition.strip()
    feature = m["feature"]
    words = f"{_OP_WORDS[m['op']]} {_value(feature, m['value'])}"
    if m["low"] is not None:
        low = "at least" if m["lop"] == "<=" else "over"
        words = f"{low} {_value(feature, m['low'])} and {words}"
    return f"{feature_words(feature)} {words}"


def reason_words(reason: str) -> tuple[tuple[str, ...], str]:
    """A surrogate reason ("rule: c1 and c2; traits: t1, t2") as (each condition in words, the traits);
    any other reason (RFM scores, fallbacks, predictive rules) as ((the reason,), "")."""
    text = reason.strip()
    if not text.startswith("rule:"):
        return (text,), ""
    rule, _, traits = text[len("rule:") :].partition("; traits:")
    # a range ("0.65 < x <= 1.82") has no "and" inside, so splitting on " and " keeps it whole
    conditions = tuple(condition_words(c) for c in rule.split(" and ") if c.strip())
    return conditions, traits.strip()


def _score_range(letter: str, bounds: Any) -> str | None:
    """[4, 5] -> "frequency score 4-5"; the whole 1-5 range says nothing and is left out."""
    try:
        low, high = int(bounds[0]), int(bounds[1])
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    if low <= 1 and high >= 5:
        return None
    score = f"{low}" if low == high else f"{low}\u2013{high}"
    return f"{SCORE_WORDS[letter]} score {score}"


def rfm_rules(content: Mapping[str, Any]) -> list[SegmentRule]:
    """An RFM rule table in order (the first match names the customer), then its special segments."""
    out = []
    for rule in content.get("rules") or []:
        if not isinstance(rule, Mapping):
            continue
        parts = tuple(p for letter in ("r", "f", "m") if (p := _score_range(letter, rule.get(letter))))
        description = str(rule.get("description") or "").strip()
        out.append(
            SegmentRule(
                key=rule.get("key"),
                name=str(rule.get("name") or rule.get("key") or "?"),
                conditions=parts or ("any scores",),
                note=description,
            )
        )
    specials = (
        ("no_purchase", "no completed order yet (scores 0)"),
        ("not_profiled", "no lawful basis for profiling, or objected: not scored"),
        ("others", "scored, but no rule above matches"),
    )
    for field, words in specials:
        entry = content.get(field)
        if isinstance(entry, Mapping) and entry.get("name"):
            out.append(SegmentRule(key=entry.get("key"), name=str(entry["name"]), conditions=(words,)))
    return out


def _condition_words(measure: str, spec: Any, name_of: Callable[[str], str]) -> str:
    label = PREDICTIVE_MEASURES.get(measure, measure.replace("_", " "))
    if not isinstance(spec, Mapping):
        return f"{label} {spec}"
    if "in" in spec or "not_in" in spec:
        negate = "not_in" in spec
        keys = spec.get("not_in" if negate else "in") or []
        names = ", ".join(name_of(str(k)) for k in keys)
        return f"{label} {'is not' if negate else 'is'} one of {names}"
    bounds = []
    if spec.get("min") is not None:
        bounds.append(f"at least {float(spec['min']):g}")
    if spec.get("max") is not None:
        bounds.append(f"at most {float(spec['max']):g}")
    return f"{label} {' and '.join(bounds)}"


def predictive_rules(content: Mapping[str, Any], name_of: Callable[[str], str]) -> list[SegmentRule]:
    """A prediction definition's segments in order (the first whose conditions all hold; the last takes
    the rest). `name_of` turns an RFM segment key into its name."""
    out = []
    for segment in content.get("segments") or []:
        if not isinstance(segment, Mapping):
            continue
        when = segment.get("when") or {}
        words = (
            tuple(_condition_words(str(m), spec, name_of) for m, spec in when.items())
            if isinstance(when, Mapping) and when
            else ("every predicted customer no earlier segment took",)
        )
        out.append(
            SegmentRule(
                key=None,
                name=str(segment.get("name") or "?"),
                conditions=words,
                note=str(segment.get("description") or "").strip(),
            )
        )
    return out
