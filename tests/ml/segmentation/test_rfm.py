"""RFM scores, the named segments, the rfm-family rows and the rule table's version lock."""

import dataclasses

import numpy as np
import pandas as pd

from ml.segmentation.rfm import (
    NO_PURCHASE,
    NOT_PROFILED,
    OTHERS,
    RFM_RULES,
    RFM_RULES_LOCK,
    RFM_RULES_VERSION,
    rfm_assignments,
    rule_table,
    score_rfm,
    segment_key,
)


def frame(n=500, seed=0):
    rng = np.random.default_rng(seed)
    freq = rng.poisson(4, n)
    return pd.DataFrame(
        {
            "customer_id": [f"cus_{i:016x}" for i in range(n)],
            "recency_days": np.where(freq > 0, rng.integers(0, 700, n), np.nan),
            "frequency": freq,
            "monetary_base": freq * rng.gamma(2, 40, n),
        }
    )


def test_scores_in_range_and_one_segment_each():
    df = frame()
    out = score_rfm(df)
    assert len(out) == len(df) and out["customer_id"].is_unique
    buyers = df["frequency"] > 0
    for col in ("r_score", "f_score", "m_score"):
        assert out.loc[buyers.to_numpy(), col].between(1, 5).all()
        assert (out.loc[~buyers.to_numpy(), col] == 0).all()
    assert (out.loc[~buyers.to_numpy(), "rfm_segment"] == NO_PURCHASE).all()
    assert out["rfm_segment"].notna().all()


def test_most_recent_frequent_big_spender_is_champion():
    df = frame()
    df.loc[0, ["recency_days", "frequency", "monetary_base"]] = [0, 50, 1e6]
    assert score_rfm(df).loc[0, "rfm_segment"] == RFM_RULES[0].name == "Champions"


def test_equal_values_get_one_score_and_one_time_buyers_are_never_frequent():
    """A shop where most customers bought once (the e-commerce export of issue 22: 13,848): every
    one-time buyer scores F = 1, whatever their id, so none is named Champions, Loyal or At Risk."""
    df = frame(1000)
    df["frequency"] = np.where(np.arange(1000) < 900, 1, df["frequency"].clip(lower=2))
    df["recency_days"] = np.arange(1000) % 400  # every buyer has a recency; many share one
    out = score_rfm(df)
    once = (df["frequency"] == 1).to_numpy()
    assert set(out.loc[once, "f_score"]) == {1}
    assert not out.loc[once, "rfm_segment"].isin(["Champions", "Loyal", "At Risk", "Cannot Lose Them"]).any()
    for col, feature in (("r_score", "recency_days"), ("m_score", "monetary_base")):
        assert (out.groupby(df[feature].to_numpy())[col].nunique() == 1).all()


def test_deterministic_under_row_order():
    df = frame()
    a = score_rfm(df).set_index("customer_id").sort_index()
    b = score_rfm(df.sample(frac=1, random_state=3)).set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(a, b)


def test_the_rule_table_matches_its_locked_version():
    """Changing RFM_RULES (or the segment names, scoring text) without bumping RFM_RULES_VERSION and
    recording the new digest in RFM_RULES_LOCK fails here."""
    table = rule_table()
    assert table.version == RFM_RULES_VERSION
    recorded = RFM_RULES_LOCK.get(RFM_RULES_VERSION)
    assert recorded is not None, f'record "{RFM_RULES_VERSION}": "{table.content_sha256}" in RFM_RULES_LOCK'
    assert recorded == table.content_sha256, (
        f"the RFM rule table changed but RFM_RULES_VERSION {RFM_RULES_VERSION} did not: bump it and record "
        f"the new digest {table.content_sha256} in RFM_RULES_LOCK"
    )


def test_a_changed_rule_changes_the_digest_and_the_version_does_not():
    changed = (dataclasses.replace(RFM_RULES[0], r=(4, 5)), *RFM_RULES[1:])
    assert rule_table(changed).content_sha256 != rule_table().content_sha256
    assert rule_table(version="9.9.9").content_sha256 == rule_table().content_sha256
    table = rule_table()
    assert (table.name, table.family) == ("rfm", "rfm") and table.raw["version"] == RFM_RULES_VERSION


def test_segment_keys_are_slugs_of_the_names():
    assert segment_key("Champions") == "rfm_champions"
    assert segment_key(NO_PURCHASE) == "rfm_no_purchase_yet"
    assert segment_key("Cannot Lose Them") == "rfm_cannot_lose_them"
    keys = [segment_key(r.name) for r in RFM_RULES] + [segment_key(n) for n in (NO_PURCHASE, OTHERS, NOT_PROFILED)]
    assert len(set(keys)) == len(keys)


def test_rfm_rows_one_per_customer_with_rule_reason_and_not_profiled_fallback():
    df = frame()
    no_consent = np.arange(len(df)) % 7 == 0
    rows = rfm_assignments(df, no_consent)
    assert len(rows) == len(df) and rows["customer_id"].is_unique
    skipped = rows.set_index("customer_id").loc[df.loc[no_consent, "customer_id"]]
    assert (skipped["segment_key"] == "rfm_not_profiled").all() and (skipped["segment_name"] == NOT_PROFILED).all()
    assert skipped["is_fallback"].all() and (skipped["fallback_reason"] == "no_profiling_consent").all()
    assert skipped[["r_score", "f_score", "m_score"]].isna().all().all()
    scored = rows.set_index("customer_id").loc[df.loc[~no_consent, "customer_id"]]
    assert not scored["is_fallback"].any() and scored["fallback_reason"].isna().all()
    # "No purchase yet" is a real rfm segment, not a fallback
    assert (scored["segment_key"] == "rfm_no_purchase_yet").any()
    champions = scored[scored["segment_name"] == "Champions"]
    assert champions["reason"].str.match(r"^R=5 F=[45] M=[1-5]: bought recently, buy often and spend the most$").all()
    # customers without consent are not part of the quintiles: scores equal scoring the others alone
    alone = score_rfm(df.loc[~no_consent]).set_index("customer_id")
    assert (scored["r_score"].astype(int) == alone.loc[scored.index, "r_score"]).all()
    # the text columns stay categoricals with the fallback rows appended (one string per label, not per row)
    for column in ("segment_key", "segment_name", "reason"):
        assert isinstance(rows[column].dtype, pd.CategoricalDtype), column
    assert rows["reason"].cat.categories.is_unique and len(rows["reason"].cat.categories) < len(rows) // 4
    assert list(rows.columns) == list(rfm_assignments(df).columns)
