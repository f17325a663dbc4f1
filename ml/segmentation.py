"""Behavioural segmentation: k-means on customer features, with readable names and profiles.

The model is a scikit-learn Pipeline (explicit imputation + log transform -> StandardScaler -> KMeans).
k is chosen among `k_range` by silhouette on a sample; the final model is fitted on every row. Each
cluster gets a human-readable name from deterministic rules on its standardised centroid, and a
profile a frontline team understands (size, share, recency, frequency, spend, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

SEGMENTATION_FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary_eur",
    "aov_eur",
    "tenure_days",
    "orders_last_90d",
    "orders_prev_90d",
    "discount_share",
    "return_rate",
    "share_web",
    "share_app",
    "share_store",
    "ticket_count",
    "avg_csat",
)
# Skewed counts and money: log1p before scaling so a few big spenders do not own a cluster.
LOG_FEATURES = ("recency_days", "frequency", "monetary_eur", "aov_eur", "tenure_days", "orders_last_90d", "orders_prev_90d", "ticket_count")
# Imputation rules for features that are null by construction (no order / no ticket yet).
NEUTRAL_CSAT = 4.0

PROFILE_COLUMNS = ("recency_days", "frequency", "monetary_eur", "aov_eur", "tenure_days", "discount_share", "return_rate", "ticket_count", "avg_csat")

TRAIT_WORDS = {
    "recency_days": ("long since last order", "recent buyers"),
    "frequency": ("frequent", "rare buyers"),
    "monetary_eur": ("high spend", "low spend"),
    "aov_eur": ("large baskets", "small baskets"),
    "tenure_days": ("long-standing", "recently joined"),
    "orders_last_90d": ("active lately", "inactive lately"),
    "orders_prev_90d": ("active 3-6 months ago", "inactive 3-6 months ago"),
    "discount_share": ("discount-heavy", "rarely discounted"),
    "return_rate": ("many returns", "few returns"),
    "share_web": ("web shoppers", "little web"),
    "share_app": ("app shoppers", "little app"),
    "share_store": ("store shoppers", "little store"),
    "ticket_count": ("many support tickets", "few tickets"),
    "avg_csat": ("satisfied", "low satisfaction"),
}


def prepare_features(df: pd.DataFrame) -> np.ndarray:
    """Feature matrix with explicit null rules: customers without orders look maximally lapsed."""
    x = pd.DataFrame(index=df.index)
    tenure = pd.to_numeric(df["tenure_days"], errors="coerce").fillna(0).astype(float)
    for col in SEGMENTATION_FEATURES:
        x[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    x["recency_days"] = x["recency_days"].fillna(tenure + 365.0)
    x["aov_eur"] = x["aov_eur"].fillna(0.0)
    x["return_rate"] = x["return_rate"].fillna(0.0)
    x["avg_csat"] = x["avg_csat"].fillna(NEUTRAL_CSAT)
    x = x.fillna(0.0)
    for col in LOG_FEATURES:
        x[col] = np.log1p(x[col].clip(lower=0))
    return x.to_numpy(dtype=float)


@dataclass
class TrainedSegmentation:
    """A fitted segmentation and everything needed to explain and log it."""

    pipeline: Pipeline
    k: int
    silhouette_by_k: dict[int, float]
    metrics: dict[str, float]
    profile: pd.DataFrame  # one row per cluster
    names: dict[int, str]  # cluster -> human name
    keys: dict[int, str]  # cluster -> stable segment key
    traits: dict[int, str]  # cluster -> short trait text
    n_rows: int
    seed: int
    k_range: tuple[int, ...] = field(default_factory=tuple)
    features: tuple[str, ...] = SEGMENTATION_FEATURES


def build_pipeline(k: int, seed: int, n_init: int = 4) -> Pipeline:
    return Pipeline(
        [
            ("prepare", FunctionTransformer(prepare_features)),
            ("scale", StandardScaler()),
            ("kmeans", KMeans(n_clusters=k, n_init=n_init, random_state=seed)),
        ]
    )


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_").replace("__", "_")


def name_clusters(centroids: np.ndarray, sizes: np.ndarray) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """Names, keys and trait texts from standardised centroids (features in SEGMENTATION_FEATURES order).

    Rules, first match wins; a name already taken by a larger cluster gets a distinguishing trait.
    """
    f = {name: i for i, name in enumerate(SEGMENTATION_FEATURES)}
    names: dict[int, str] = {}
    traits: dict[int, str] = {}
    for c in np.argsort(-sizes, kind="stable"):
        z = centroids[c]
        g = lambda col: z[f[col]]  # noqa: E731
        if g("frequency") < -1.0 and g("recency_days") > 0.5:
            name = "Never or barely bought"
        elif g("tenure_days") < -1.0:
            name = "New customers"
        elif g("ticket_count") > 1.0 or (g("return_rate") > 1.0 and g("avg_csat") < -0.5):
            name = "Support-heavy customers"
        elif g("discount_share") > 1.0:
            name = "Discount seekers"
        elif g("recency_days") > 0.8 and g("orders_prev_90d") < 0 and g("frequency") > -0.3:
            name = "Lapsing regulars"
        elif g("recency_days") > 0.8:
            name = "Dormant customers"
        elif g("monetary_eur") > 0.6 and g("frequency") > 0.6:
            name = "High-value frequent buyers"
        elif g("frequency") > 0:
            name = "Steady regulars"
        else:
            name = "Occasional buyers"
        order = np.argsort(-np.abs(z), kind="stable")[:3]
        words = [TRAIT_WORDS[SEGMENTATION_FEATURES[i]][0 if z[i] > 0 else 1] for i in order]
        traits[int(c)] = ", ".join(words)
        if name in names.values():
            name = f"{name} ({words[0]})"
        while name in names.values():
            name += "'"
        names[int(c)] = name
    keys = {c: f"behavioural_{_slug(n)}" for c, n in names.items()}
    return names, keys, traits


def train_segmentation(
    features: pd.DataFrame,
    k_range: range | tuple[int, ...] = range(3, 8),
    seed: int = 0,
    sample_size: int = 20_000,
) -> TrainedSegmentation:
    """Choose k by silhouette on a sample, fit on all rows, name and profile the clusters."""
    n = len(features)
    ks = [k for k in k_range if k < n]
    if not ks:
        raise ValueError(f"need more than {min(k_range)} customers to segment, got {n}")
    rng = np.random.default_rng(seed)
    sample_idx = np.sort(rng.choice(n, size=min(n, sample_size), replace=False))
    sample = features.iloc[sample_idx]
    scores: dict[int, float] = {}
    for k in ks:
        pipe = build_pipeline(k, seed).fit(sample)
        labels = pipe.named_steps["kmeans"].labels_
        x = pipe[:-1].transform(sample)
        scores[k] = float(silhouette_score(x, labels, sample_size=min(len(x), 5000), random_state=seed)) if len(set(labels)) > 1 else -1.0
    k = max(scores, key=lambda kk: (scores[kk], -kk))
    pipeline = build_pipeline(k, seed).fit(features)
    labels = pipeline.named_steps["kmeans"].labels_
    x_sample = pipeline[:-1].transform(sample)
    sample_labels = labels[sample_idx]
    sizes = np.bincount(labels, minlength=k)
    names, keys, traits = name_clusters(pipeline.named_steps["kmeans"].cluster_centers_, sizes)
    profile = profile_segments(features, labels, names, keys)
    metrics = {
        "silhouette": scores[k],
        "davies_bouldin": float(davies_bouldin_score(x_sample, sample_labels)) if len(set(sample_labels)) > 1 else float("nan"),
        "inertia": float(pipeline.named_steps["kmeans"].inertia_),
        "min_segment_share": float(sizes.min() / n),
    }
    for c in range(k):
        metrics[f"share_{keys[c]}"] = float(sizes[c] / n)
    return TrainedSegmentation(
        pipeline=pipeline, k=k, silhouette_by_k=scores, metrics=metrics, profile=profile, names=names,
        keys=keys, traits=traits, n_rows=n, seed=seed, k_range=tuple(k_range),
    )


def profile_segments(features: pd.DataFrame, labels: np.ndarray, names: dict[int, str], keys: dict[int, str]) -> pd.DataFrame:
    """Per segment: size, share and mean of the profile columns, in business units."""
    df = features[list(PROFILE_COLUMNS)].apply(pd.to_numeric, errors="coerce").astype(float)
    df["cluster"] = labels
    prof = df.groupby("cluster").mean().add_prefix("avg_")
    prof.insert(0, "customers", df.groupby("cluster").size())
    prof.insert(1, "share", prof["customers"] / len(df))
    prof.insert(0, "segment_name", [names[c] for c in prof.index])
    prof.insert(0, "segment_key", [keys[c] for c in prof.index])
    return prof.reset_index().sort_values("customers", ascending=False).reset_index(drop=True)
