"""Behavioural segmentation: candidate clusterings, chosen for quality and stability, explained by rules.

The model is a scikit-learn Pipeline: `DefinitionFeatures` (null rules, transforms and shrinkage as
the segment definition says) -> StandardScaler -> `FeatureWeights` (group weights) -> KMeans or
GaussianMixture. What it may be is set by the segment definition
(`ml/segmentation/definitions/behavioural_segmentation.yaml`):

1. every candidate algorithm is fitted for every k on a sample; k-means' best k by silhouette, the
   Gaussian mixture's by BIC;
2. each algorithm's best is refitted on bootstrap resamples: the mean adjusted Rand index of their
   labels against the reference (on the same customers) is its *stability*;
3. among the finalists the most stable-enough one with the best silhouette wins and is fitted on
   every row;
4. a decision-tree surrogate gives each cluster readable rules in business units, with its fidelity
   (`ml/segmentation/surrogate.py`); names come from the definition's naming rules on the standardised
   centroids; profiles in business units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml.segmentation.definition import FeatureSpec, SegmentDefinition
from ml.segmentation.surrogate import Surrogate, fit_surrogate

# Business-unit profile of each segment (all registered for profiling and reporting).
PROFILE_COLUMNS = (
    "recency_days",
    "frequency",
    "monetary_base",
    "aov_base",
    "tenure_days",
    "discount_share",
    "return_rate",
    "ticket_count",
    "avg_csat",
)


class DefinitionFeatures(BaseEstimator, TransformerMixin):
    """Turns the feature columns into the model's matrix, as the definition's feature specs say.

    Per feature: nulls become zero / the training mean / the training max; then `log` (log1p) or
    `sqrt`; then, for rates measured on few events, shrinkage towards the training population's
    rate: (v * n + s * prior) / (n + s) with n the `shrink_by` count, so a customer with one
    discounted order out of one is not "100% discount-driven". Everything learnt (fill values,
    priors) is learnt in `fit`, from training rows only.
    """

    def __init__(self, specs: tuple[FeatureSpec, ...] = ()):
        self.specs = specs

    def _raw(self, X: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
        return pd.to_numeric(X[spec.name], errors="coerce").to_numpy(dtype=float)

    @staticmethod
    def _transform_one(v: np.ndarray, how: str) -> np.ndarray:
        if how == "log":
            return np.log1p(np.clip(v, 0, None))
        if how == "sqrt":
            return np.sqrt(np.clip(v, 0, None))
        if how == "ln":  # for strictly positive rates, where log1p would squash the low end
            return np.log(np.clip(v, 0.01, None))
        return v

    def _counts(self, X: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
        return np.clip(np.nan_to_num(pd.to_numeric(X[spec.shrink_by], errors="coerce").to_numpy(dtype=float)), 0, None)

    def fit(self, X: pd.DataFrame, y=None):
        self.fill_ = {}
        self.prior_ = {}
        for spec in self.specs:
            raw = self._raw(X, spec)
            seen = raw[np.isfinite(raw)]
            if spec.missing == "zero" or seen.size == 0:
                self.fill_[spec.name] = 0.0
            elif spec.missing == "max":
                self.fill_[spec.name] = float(seen.max())
            else:
                self.fill_[spec.name] = float(seen.mean())
            if spec.shrink_by:
                v = self._transform_one(np.where(np.isfinite(raw), raw, self.fill_[spec.name]), spec.transform)
                n = self._counts(X, spec)
                self.prior_[spec.name] = float((v * n).sum() / n.sum()) if n.sum() > 0 else float(v.mean())
        self.n_features_in_ = len(self.specs)
        return self

    def readable(self, X: pd.DataFrame) -> np.ndarray:
        """The features in business units with nulls filled (for the surrogate's rules)."""
        cols = [self._raw(X, s) for s in self.specs]
        return np.column_stack(
            [np.where(np.isfinite(c), c, self.fill_[s.name]) for c, s in zip(cols, self.specs, strict=True)]
        )

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        filled = self.readable(X)
        out = np.empty_like(filled)
        for j, spec in enumerate(self.specs):
            v = self._transform_one(filled[:, j], spec.transform)
            if spec.shrink_by:
                n = self._counts(X, spec)
                v = (v * n + spec.shrink_strength * self.prior_[spec.name]) / (n + spec.shrink_strength)
            out[:, j] = v
        return out


class FeatureWeights(BaseEstimator, TransformerMixin):
    """Multiplies standardised columns by their weights (the definition's group weights)."""

    def __init__(self, weights: tuple[float, ...] = ()):
        self.weights = weights

    def fit(self, X, y=None):
        return self

    def __sklearn_is_fitted__(self) -> bool:  # stateless
        return True

    def transform(self, X) -> np.ndarray:
        return np.asarray(X, dtype=float) * np.asarray(self.weights, dtype=float)


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
    gap_by_k: dict[str, dict[int, float]]  # algorithm -> k -> gap statistic (k-means chosen by gap)
    candidates: list[Candidate]
    metrics: dict[str, float]
    profile: pd.DataFrame  # one row per cluster
    names: dict[int, str]  # cluster -> human name
    keys: dict[int, str]  # cluster -> stable segment key
    traits: dict[int, str]  # cluster -> short trait text
    surrogate: Surrogate
    n_rows: int
    seed: int
    fit_rows: int = 0  # customers the final model and the surrogate were fitted on (<= FIT_MAX_ROWS)
    k_range: tuple[int, ...] = field(default_factory=tuple)
    features: tuple[str, ...] = ()
    input_columns: tuple[str, ...] = ()  # features + shrinkage counts: what scoring must pass in
    definition_version: str = ""


# The chosen model and its surrogate tree are fitted on at most this many customers (a seeded random
# sample above it); every customer is then labelled by the fitted model. 100k points pin down seven
# centroids and a depth-6 tree as well as a million do, at a tenth of the cost (KMeans with 8 inits on
# 800k rows: ~85 s, the tree ~40 s on 2 cores).
FIT_MAX_ROWS = 100_000


def build_pipeline(
    definition: SegmentDefinition, k: int, seed: int, algorithm: str = "kmeans", n_init: int = 8
) -> Pipeline:
    if algorithm == "kmeans":
        model = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    elif algorithm == "gaussian_mixture":
        model = GaussianMixture(n_components=k, covariance_type="full", n_init=2, random_state=seed, reg_covar=1e-4)
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    return Pipeline(
        [
            ("prepare", DefinitionFeatures(definition.feature_specs)),
            ("scale", StandardScaler()),
            ("weight", FeatureWeights(definition.feature_weights())),
            ("model", model),
        ]
    )


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_").replace("__", "_")


def _trait(feature: str, z: float) -> str:
    return f"{'high' if z > 0 else 'low'} {feature.replace('_', ' ')}"


# Names that promise repeat purchases; given only to a cluster where most customers bought more than once.
REPEAT_WORDS = re.compile(r"\b(regular|regulars|loyal|loyalists?|champions?|frequent|repeat)\b", re.IGNORECASE)
ONE_TIME_NAME = "One-time buyers"
MIN_REPEAT_SHARE = 0.5


def name_clusters(
    centroids: np.ndarray,
    sizes: np.ndarray,
    definition: SegmentDefinition,
    repeat_share: dict[int, float] | None = None,
) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """Names, keys and trait texts from standardised centroids (columns in the definition's feature
    order), by the definition's naming rules: first match wins, larger clusters choose first; a
    name already taken gets the cluster's strongest trait appended.

    A guard on the measured profile: a name promising repeat purchases ("regulars", "loyal",
    "champions", "frequent") goes only to a cluster where at least half the customers placed two or
    more orders (`repeat_share`, per cluster); otherwise the cluster is named "One-time buyers". A
    z-score above average says "more than the others", not "more than once": on data where most
    customers bought once, the above-average cluster may still be mostly one-time buyers."""
    features = definition.features
    names: dict[int, str] = {}
    traits: dict[int, str] = {}
    for c in np.argsort(-sizes, kind="stable"):
        # centroids come from the caller: keep zip's truncating behaviour rather than assert their width here
        z = dict(zip(features, centroids[c].tolist(), strict=False))
        name = next((r.name for r in definition.naming_rules if r.matches(z)), definition.default_name)
        if repeat_share is not None and REPEAT_WORDS.search(name) and repeat_share.get(int(c), 0.0) < MIN_REPEAT_SHARE:
            name = ONE_TIME_NAME
        order = np.argsort(-np.abs(centroids[c]), kind="stable")[:3]
        words = [_trait(features[i], centroids[c][i]) for i in order]
        traits[int(c)] = ", ".join(words)
        if name in names.values():
            name = f"{name} ({words[0]})"
        while name in names.values():
            name += "'"
        names[int(c)] = name
    keys = {c: f"{definition.family}_{_slug(n)}" for c, n in names.items()}
    return names, keys, traits


def _silhouette(x: np.ndarray, labels: np.ndarray, seed: int) -> float:
    if len(set(labels.tolist())) < 2:
        return -1.0
    return float(silhouette_score(x, labels, sample_size=min(len(x), 5000), random_state=seed))


def gap_statistic(x: np.ndarray, ks: list[int], seed: int, references: int, max_rows: int = 5000) -> dict[int, float]:
    """Tibshirani's gap statistic per k: how much tighter k-means packs the data than data without
    clusters, E*[log W_k(reference)] - log W_k(data), W_k = within-cluster sum of squares; reference
    sets are uniform in the principal-axes bounding box of the data."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    if len(x) > max_rows:
        x = x[np.sort(rng.choice(len(x), max_rows, replace=False))]
    rotated = PCA(random_state=seed).fit_transform(x)
    low, high = rotated.min(axis=0), rotated.max(axis=0)
    refs = [rng.uniform(low, high, size=rotated.shape) for _ in range(references)]
    out = {}
    for k in ks:
        log_w = np.log(KMeans(n_clusters=k, n_init=4, random_state=seed).fit(rotated).inertia_)
        log_ref = [
            np.log(KMeans(n_clusters=k, n_init=2, random_state=seed + b).fit(r).inertia_) for b, r in enumerate(refs)
        ]
        out[k] = float(np.mean(log_ref) - log_w)
    return out


def choose_k_by_gap(gaps: dict[int, float], ks: list[int], min_gain: float) -> int:
    """The smallest k after which one more segment gains less than `min_gain` gap: more segments
    would split real groups rather than find new ones. (Tibshirani's one-standard-error rule with a
    practical floor: on tens of thousands of customers the standard error is tiny and the classic
    rule always asks for more segments.)"""
    for k in ks:
        if gaps[k + 1] - gaps[k] < min_gain:
            return k
    return ks[-1]


def stability_ari(
    sample: pd.DataFrame, definition: SegmentDefinition, algorithm: str, k: int, seed: int, rounds: int, size: int
) -> float:
    """Mean adjusted Rand index between the reference fit and fits on bootstrap resamples, on the
    same customers (the sample). 1.0 = the same segments whatever the resample."""
    reference = build_pipeline(definition, k, seed, algorithm).fit(sample).predict(sample)
    rng = np.random.default_rng(seed + 1)
    scores = []
    for r in range(rounds):
        idx = rng.choice(len(sample), size=min(size, len(sample)), replace=True)
        boot = build_pipeline(definition, k, seed + 1 + r, algorithm).fit(sample.iloc[idx])
        scores.append(adjusted_rand_score(reference, boot.predict(sample)))
    return float(np.mean(scores))


def train_segmentation(
    features: pd.DataFrame,
    definition=None,
    seed: int = 0,
    k_range: range | tuple[int, ...] | None = None,
    sample_size: int | None = None,
) -> TrainedSegmentation:
    """Choose algorithm and k per the definition, fit (on up to FIT_MAX_ROWS rows), label every row,
    explain, name and profile.

    `definition` is a SegmentDefinition (default: the behavioural one); `k_range` and
    `sample_size` override it (tests, tiny populations)."""
    from ml.segmentation.definition import load_definition

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
    gaps: dict[str, dict[int, float]] = {}
    candidates: list[Candidate] = []
    for algorithm in definition.algorithms:
        silhouettes[algorithm], bics = {}, {}
        for k in ks:
            pipe = build_pipeline(definition, k, seed, algorithm).fit(sample)
            x = pipe[:-1].transform(sample)
            silhouettes[algorithm][k] = _silhouette(x, pipe.predict(sample), seed)
            if algorithm == "gaussian_mixture":
                bics[k] = float(pipe.named_steps["model"].bic(x))
        if bics:
            best_k = min(bics, key=lambda kk: (bics[kk], kk))
        elif definition.k_selection == "gap":
            gaps[algorithm] = gap_statistic(x, [*ks, ks[-1] + 1], seed, definition.gap_references)
            best_k = choose_k_by_gap(gaps[algorithm], ks, definition.gap_min_gain)
        else:
            best_k = max(silhouettes[algorithm], key=lambda kk: (silhouettes[algorithm][kk], -kk))
        candidates.append(
            Candidate(
                algorithm,
                best_k,
                silhouettes[algorithm][best_k],
                bics.get(best_k),
                stability_ari(
                    sample,
                    definition,
                    algorithm,
                    best_k,
                    seed,
                    definition.bootstrap_rounds,
                    definition.bootstrap_sample_size,
                ),
            )
        )
    stable = [c for c in candidates if c.stability_ari >= definition.gates.min_stability_ari]
    chosen = max(stable, key=lambda c: c.silhouette) if stable else max(candidates, key=lambda c: c.stability_ari)
    fit_rows = features
    if n > FIT_MAX_ROWS:
        fit_rows = features.iloc[np.sort(rng.choice(n, size=FIT_MAX_ROWS, replace=False))]
    pipeline = build_pipeline(definition, chosen.k, seed, chosen.algorithm).fit(fit_rows)
    labels = pipeline.predict(features).astype(int)
    x_all = pipeline[:-1].transform(features)
    z_all = pipeline[:-2].transform(features)  # standardised, before the weights: what names read
    # clusters numbered 0..k-1 by size; empty mixture components are dropped from the naming
    present = np.unique(labels)
    sizes = np.bincount(labels, minlength=chosen.k)
    centroids = np.vstack(
        [z_all[labels == c].mean(axis=0) if sizes[c] else np.zeros(z_all.shape[1]) for c in range(chosen.k)]
    )
    # the share of repeat buyers per cluster: names that promise repeat purchases need them (`name_clusters`)
    repeat_share = None
    if "frequency" in features:
        orders = pd.to_numeric(features["frequency"], errors="coerce").fillna(0).to_numpy()
        repeat_share = {c: float((orders[labels == c] >= 2).mean()) for c in range(chosen.k) if sizes[c]}
    names, keys, traits = name_clusters(centroids, sizes, definition, repeat_share)
    # fidelity is measured on the whole population: the rules must hold for everyone, not a sample
    surrogate = fit_surrogate(
        pipeline.named_steps["prepare"].readable(features),
        labels,
        definition.features,
        definition.surrogate_max_depth,
        definition.surrogate_min_samples_leaf,
        seed,
        max_fit_rows=FIT_MAX_ROWS,
    )
    profile = profile_segments(features, labels, names, keys)
    profile["rule"] = [surrogate.segment_rules.get(int(c), "") for c in profile["cluster"]]
    x_sample, sample_labels = x_all[sample_idx], labels[sample_idx]
    metrics = {
        "silhouette": chosen.silhouette,
        "davies_bouldin": float(davies_bouldin_score(x_sample, sample_labels))
        if len(set(sample_labels)) > 1
        else float("nan"),
        "stability_ari": chosen.stability_ari,
        "surrogate_fidelity": surrogate.fidelity,
        "min_segment_share": float(sizes[present].min() / n),
        "segments": float(len(present)),
    }
    for c in present.tolist():
        metrics[f"share_{keys[c]}"] = float(sizes[c] / n)
    return TrainedSegmentation(
        pipeline=pipeline,
        algorithm=chosen.algorithm,
        k=chosen.k,
        silhouette_by_k=silhouettes,
        gap_by_k=gaps,
        candidates=candidates,
        metrics=metrics,
        profile=profile,
        names=names,
        keys=keys,
        traits=traits,
        surrogate=surrogate,
        n_rows=n,
        fit_rows=len(fit_rows),
        seed=seed,
        k_range=k_range,
        features=definition.features,
        input_columns=definition.input_columns,
        definition_version=definition.version,
    )


def profile_segments(
    features: pd.DataFrame, labels: np.ndarray, names: dict[int, str], keys: dict[int, str]
) -> pd.DataFrame:
    """Per segment: size, share and mean of the profile columns, in business units."""
    df = features[list(PROFILE_COLUMNS)].apply(pd.to_numeric, errors="coerce").astype(float)
    df["cluster"] = labels
    prof = df.groupby("cluster").mean().add_prefix("avg_")
    prof.insert(0, "customers", df.groupby("cluster").size())
    prof.insert(1, "share", prof["customers"] / len(df))
    prof.insert(0, "segment_name", [names[c] for c in prof.index])
    prof.insert(0, "segment_key", [keys[c] for c in prof.index])
    return prof.reset_index().sort_values("customers", ascending=False).reset_index(drop=True)
