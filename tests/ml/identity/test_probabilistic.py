"""The trained Splink model's levels that no training match showed (`unseen_levels_without_credit`)."""

from __future__ import annotations

import pytest

from ml.identity.probabilistic import unseen_levels_without_credit


def level(label: str, m: float | None, u: float | None) -> dict:
    out = {"label_for_charts": label}
    if m is not None:
        out["m_probability"] = m
    if u is not None:
        out["u_probability"] = u
    return out


def comparison(name: str, *levels: dict) -> dict:
    return {"output_column_name": name, "comparison_levels": [{"is_null_level": True}, *levels]}


def test_a_level_never_seen_among_matches_is_no_evidence_for_one():
    model = {
        "comparisons": [
            comparison(
                "email",
                level("exact", 0.7, 3e-4),
                level("same mailbox", 0.3, 4e-5),
                level("similar", None, 9.5e-4),  # unseen and rare among non-matches: Splink gave it +4 bits
                level("else", None, 0.9987),  # unseen, common among non-matches: stays evidence against
            ),
            comparison("city", level("exact", None, 0.04), level("else", None, 0.96)),  # untrained as a whole
        ]
    }
    assert unseen_levels_without_credit(model) == {"email": 2}
    email = model["comparisons"][0]["comparison_levels"]
    assert email[3]["m_probability"] == pytest.approx(9.5e-4)  # m = u: weight 0
    assert email[4]["m_probability"] == pytest.approx(0.05 / 3)  # Splink's default, below u
    assert [lv.get("m_probability") for lv in email[1:3]] == [0.7, 0.3]  # trained levels untouched
    assert "m_probability" not in model["comparisons"][1]["comparison_levels"][1]
