"""Synthetic customer_features frames with planted behavioural groups (shared by the ML tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# (recency mean, orders mean, aov mean, discount share, tickets mean, tenure mean)
PLANTED = {
    "champions": (10, 25, 120, 0.05, 0.3, 900),
    "dormant": (500, 2, 40, 0.05, 0.1, 1000),
    "discount": (60, 8, 50, 0.6, 0.3, 700),
    "support": (90, 6, 60, 0.1, 6, 700),
    "new": (15, 1, 60, 0.05, 0.1, 30),
}


def planted_features(n_per_group: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames, truth = [], []
    for g, (rec, orders, aov, disc, tickets, tenure) in enumerate(PLANTED.values()):
        n = n_per_group
        freq = np.maximum(1, rng.poisson(orders, n))
        recency = rng.gamma(4, rec / 4, n).round()
        first_order = np.maximum(recency, rng.gamma(8, tenure / 8, n).round())
        frames.append(
            pd.DataFrame(
                {
                    "recency_days": recency,
                    "last_activity_days": np.minimum(recency, rng.gamma(4, rec / 4, n).round()),
                    "days_since_first_order": first_order,
                    "order_rate_per_year": freq * 365.0 / (first_order + 30),
                    "discounted_order_share": np.clip(rng.normal(disc, 0.05, n), 0, 1),
                    "frequency": freq,
                    "monetary_base": freq * rng.gamma(8, aov / 8, n),
                    "aov_base": rng.gamma(8, aov / 8, n),
                    "tenure_days": rng.gamma(8, tenure / 8, n).round(),
                    "orders_last_90d": rng.poisson(max(orders * 90 / max(tenure, 90), 0.05), n),
                    "orders_prev_90d": rng.poisson(max(orders * 90 / max(tenure, 90), 0.05), n),
                    "discount_share": np.clip(rng.normal(disc, 0.05, n), 0, 1),
                    "return_rate": np.clip(rng.normal(0.05 if g != 3 else 0.3, 0.03, n), 0, 1),
                    "share_web": rng.uniform(0, 1, n),
                    "share_app": rng.uniform(0, 0.3, n),
                    "share_store": rng.uniform(0, 0.3, n),
                    "share_phone": 0.0,
                    "ticket_count": rng.poisson(tickets, n),
                    "avg_csat": np.where(rng.random(n) < 0.5, rng.uniform(1, 5, n), np.nan),
                    "category_breadth": 3,
                    "event_count": rng.poisson(5, n),
                    "has_profiling_consent": True,
                    "profiling_basis": "consent",
                    "lineless_order_count": 0,
                }
            )
        )
        truth.append(np.full(n, g))
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "customer_id", [f"cus_{i:016x}" for i in range(len(df))])
    return df, np.concatenate(truth)
