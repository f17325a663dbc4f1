"""Behavioural segmentation: candidate clusterings, chosen for quality and stability, explained by rules.

The model is a scikit-learn Pipeline (explicit imputation + log transform -> StandardScaler ->
KMeans or GaussianMixture). What it may be is set by the segment definition
(`ml/definitions/behavioural_segmentation.yaml`):

1. every candidate algorithm is fitted for every k on a sample; k-means' best k by silhouette, the
   Gaussian mixture's by BIC;
2. each algorithm's best is refitted on bootstrap resamples: the mean adjusted Rand index of their
   labels against the reference (on the same customers) is its *stability*;
3. among the finalists the most stable-enough one with the best silhouette wins and is fitted on
   every row;
4. a decision-tree surrogate gives each cluster readable rules, with its fidelity (`ml/surrogate.py`);
   names come from deterministic rules on the standardised centroids; profiles in business units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ml.surrogate import Surrogate, fit_surrogate

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


def prepare_features(df: pd.DataFrame, log: bool = True) -> np.ndarray:
    """Feature matrix with explicit null rules: customers without orders look maximally lapsed.
    `log=False` keeps business units (for the surrogate's readable rules)."""
    x = pd.DataFrame(index=df.index)
    tenure = pd.to_numeric(df["tenure_days"], errors="coerce").fillna(0).astype(float)
    for col in SEGMENTATION_FEATURES:
        x[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    x["recency_days"] = x["recency_days"].fillna(tenure + 365.0)
    x["aov_eur"] = x["aov_eur"].fillna(0.0)
    x["return_rate"] = x["return_rate"].fillna(0.0)
    x["avg_csat"] = x["avg_csat"].fillna(NEUTRAL_CSAT)
    x = x.fillna(0.0)
    if log:
        for col in LOG_FEATURES:
            x[col] = np.log1p(x[col].clip(lower=0))
    return x.to_numpy(dtype=float)


@dataclass
class Candidate:
    """One algorithm at its best k, with the figures the choice and the gates use."""

    algorithm: str
    k: int
    silhouette: float
    bic: float | None
    stability_ari: float


@dataclass
class TrainedSegmentation:
    """A fitted segmentation and everything needed to explain, gate and log it."""

    pipeline: Pipeline
    algorithm: str
    k: int
    silhouette_by_k: dict[str, dict[int, float]]  # algorithm -> k -> silhouette
    candidates: list[Candidate]
    metrics: dict[str, float]
    profile: pd.DataFrame  # one row per cluster
    names: dict[int, str]  # cluster -> human name
    keys: dict[int, str]  # cluster -> stable segment key
    traits: dict[int, str]  # cluster -> short trait text
    surrogate: Surrogate
    n_rows: int
    seed: int
    k_range: tuple[int, ...] = field(default_factory=tuple)
    features: tuple[str, ...] = SEGMENTATION_FEATURES
    definition_version: str = ""


def build_pipeline(k: int, seed: int, algorithm: str = "kmeans", n_init: int = 8) -> Pipeline:
    if algorithm == "kmeans":
        model = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    elif algorithm == "gaussian_mixture":
        model = GaussianMixture(n_components=k, covariance_type="full", n_init=2, random_state=seed, reg_covar=1e-4)
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    return Pipeline([("prepare", FunctionTransformer(prepare_features)), ("scale", StandardScaler()), ("model", model)])


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


def _silhouette(x: np.ndarray, labels: np.ndarray, seed: int) -> float:
    if len(set(labels.tolist())) < 2:
        return -1.0
    return float(silhouette_score(x, labels, sample_size=min(len(x), 5000), random_state=seed))


def stability_ari(sample: pd.DataFrame, algorithm: str, k: int, seed: int, rounds: int, size: int) -> float:
    """Mean adjusted Rand index between the reference fit and fits on bootstrap resamples, on the
    same customers (the sample). 1.0 = the same segments whatever the resample."""
    reference = build_pipeline(k, seed, algorithm).fit(sample).predict(sample)
    rng = np.random.default_rng(seed + 1)
    scores = []
    for r in range(rounds):
        idx = rng.choice(len(sample), size=min(size, len(sample)), replace=True)
        boot = build_pipeline(k, seed + 1 + r, algorithm).fit(sample.iloc[idx])
        scores.append(adjusted_rand_score(reference, boot.predict(sample)))
    return float(np.mean(scores))


def train_segmentation(
    features: pd.DataFrame,
    definition=None,
    seed: int = 0,
    k_range: range | tuple[int, ...] | None = None,
    sample_size: int | None = None,
) -> TrainedSegmentation:
    """Choose algorithm and k per the definition, fit on all rows, explain, name and profile.

    `definition` is a SegmentDefinition (default: the behavioural one); `k_range` and
    `sample_size` override it (tests, tiny populations)."""
    from ml.segment_definitions import load_definition

    definition = definition or load_definition()
    k_range = tuple(k_range or definition.k_range)
    sample_size = sample_size or definition.sample_size
    n = len(features)
    ks = [k for k in k_range if k < n]
    if not ks:
        raise ValueError(f"need more than {min(k_range)} customers to segment, got {n}")
    rng = np.random.default_rng(seed)
    sample_idx = np.sort(rng.choice(n, size=min(n, sample_size), replace=False))
    sample = features.iloc[sample_idx]
    silhouettes: dict[str, dict[int, float]] = {}
    candidates: list[Candidate] = []
    for algorithm in definition.algorithms:
        silhouettes[algorithm], bics = {}, {}
        for k in ks:
            pipe = build_pipeline(k, seed, algorithm).fit(sample)
            x = pipe[:-1].transform(sample)
            silhouettes[algorithm][k] = _silhouette(x, pipe.predict(sample), seed)
            if algorithm == "gaussian_mixture":
                bics[k] = float(pipe.named_steps["model"].bic(x))
        if bics:
            best_k = min(bics, key=lambda kk: (bics[kk], kk))
        else:
            best_k = max(silhouettes[algorithm], key=lambda kk: (silhouettes[algorithm][kk], -kk))
        candidates.append(
            Candidate(
                algorithm, best_k, silhouettes[algorithm][best_k], bics.get(best_k),
                stability_ari(sample, algorithm, best_k, seed, definition.bootstrap_rounds, definition.bootstrap_sample_size),
            )
        )
    stable = [c for c in candidates if c.stability_ari >= definition.gates.min_stability_ari]
    chosen = max(stable, key=lambda c: c.silhouette) if stable else max(candidates, key=lambda c: c.stability_ari)
    pipeline = build_pipeline(chosen.k, seed, chosen.algorithm).fit(features)
    labels = pipeline.predict(features).astype(int)
    x_all = pipeline[:-1].transform(features)
    # clusters numbered 0..k-1 by size; empty mixture components are dropped from the naming
    present = np.unique(labels)
    sizes = np.bincount(labels, minlength=chosen.k)
    centroids = np.vstack([x_all[labels == c].mean(axis=0) if sizes[c] else np.zeros(x_all.shape[1]) for c in range(chosen.k)])
    names, keys, traits = name_clusters(centroids, sizes)
    surrogate = fit_surrogate(
        prepare_features(features, log=False)[sample_idx], labels[sample_idx], SEGMENTATION_FEATURES,
        definition.surrogate_max_depth, definition.surrogate_min_samples_leaf, seed,
    )
    profile = profile_segments(features, labels, names, keys)
    profile["rule"] = [surrogate.segment_rules.get(int(c), "") for c in profile["cluster"]]
    x_sample, sample_labels = x_all[sample_idx], labels[sample_idx]
    metrics = {
        "silhouette": chosen.silhouette,
        "davies_bouldin": float(davies_bouldin_score(x_sample, sample_labels)) if len(set(sample_labels)) > 1 else float("nan"),
        "stability_ari": chosen.stability_ari,
        "surrogate_fidelity": surrogate.fidelity,
        "min_segment_share": float(sizes[present].min() / n),
        "segments": float(len(present)),
    }
    for c in present.tolist():
        metrics[f"share_{keys[c]}"] = float(sizes[c] / n)
    return TrainedSegmentation(
        pipeline=pipeline, algorithm=chosen.algorithm, k=chosen.k, silhouette_by_k=silhouettes, candidates=candidates,
        metrics=metrics, profile=profile, names=names, keys=keys, traits=traits, surrogate=surrogate, n_rows=n,
        seed=seed, k_range=k_range, definition_version=definition.version,
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
