import numpy as np
import pandas as pd

from ml.rfm import NO_PURCHASE, RFM_RULES, score_rfm


def frame(n=500, seed=0):
    rng = np.random.default_rng(seed)
    freq = rng.poisson(4, n)
    return pd.DataFrame(
        {
            "customer_id": [f"cus_{i:016x}" for i in range(n)],
            "recency_days": np.where(freq > 0, rng.integers(0, 700, n), np.nan),
            "frequency": freq,
            "monetary_eur": freq * rng.gamma(2, 40, n),
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
    df.loc[0, ["recency_days", "frequency", "monetary_eur"]] = [0, 50, 1e6]
    assert score_rfm(df).loc[0, "rfm_segment"] == RFM_RULES[0].name == "Champions"


def test_deterministic_under_row_order():
    df = frame()
    a = score_rfm(df).set_index("customer_id").sort_index()
    b = score_rfm(df.sample(frac=1, random_state=3)).set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(a, b)
