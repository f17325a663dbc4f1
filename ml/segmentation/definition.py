"""Segment definitions as versioned configuration (YAML in `ml/segmentation/definitions/`).

A definition says which features a segmentation may use and how each is prepared (transform,
shrinkage of rates measured on few orders, group weight), which algorithms and k it may choose from,
how the surrogate rules are grown, how segments are named and which quality gates a model must pass
to become champion. Features must be registered and allowed for profiling (warehouse/feature_registry.py). Its
semantic `version` travels with every model (MLflow param and tag) and every assignment row, and is
written to `segments.segment_definitions`.

The version must change when the content changes: `versions.lock` records the content digest of
every released version (`segments definitions lock` writes it); `ml.versioning.check_version_lock()`
(run by the tests and at load time) refuses content that differs from the digest recorded for its version.

Each definition registers its models under its own `model_name` (default `customer_segmentation`), so
training under another definition never replaces the champion of the first one. `eligibility:
require_lawful_basis` (formerly `require_profiling_consent`, still read) profiles only customers with a
lawful basis for profiling: a granted consent, or the legitimate interest or contract the user's
project configures, and never someone who objected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ml.model_registry import SEGMENTATION_MODEL
from ml.versioning import VersionLockError, check_version_lock, content_digest, read_lock
from warehouse.feature_registry import FeatureRegistryError, load_registry, require_purpose

DEFINITIONS_DIR = Path(__file__).resolve().parent / "definitions"
BEHAVIOURAL = DEFINITIONS_DIR / "behavioural_segmentation.yaml"
VERSION_LOCK = DEFINITIONS_DIR / "versions.lock"
ALGORITHMS = ("kmeans", "gaussian_mixture")
TRANSFORMS = ("none", "log", "ln", "sqrt")
K_SELECTION = ("silhouette", "gap")  # how k-means' k is chosen (the Gaussian mixture's by BIC)
MISSING = ("zero", "mean", "max")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class DefinitionError(ValueError):
    """A definition file that cannot be used, with the reason."""


@dataclass(frozen=True)
class PromotionGates:
    """What a challenger must reach to become champion."""

    min_silhouette: float
    min_stability_ari: float
    min_segment_share: float
    min_surrogate_fidelity: float
    k_min: int
    k_max: int

    def failures(self, metrics: dict[str, float], k: int) -> list[str]:
        """Human-readable reasons the metrics fail the gates (empty = promotable)."""
        out = []
        if not self.k_min <= k <= self.k_max:
            out.append(f"k={k} outside [{self.k_min}, {self.k_max}]")
        for metric, bound in (
            ("silhouette", self.min_silhouette),
            ("stability_ari", self.min_stability_ari),
            ("min_segment_share", self.min_segment_share),
            ("surrogate_fidelity", self.min_surrogate_fidelity),
        ):
            value = metrics.get(metric)
            if value is None or not value >= bound:  # NaN fails too
                out.append(f"{metric}={value if value is None else round(value, 4)} < {bound}")
        return out


@dataclass(frozen=True)
class FeatureSpec:
    """How one feature enters the model.

    transform: `log` (log1p) or `sqrt` for skewed counts, money and durations, `ln` for strictly
    positive rates (log1p would squash the low end), else `none`.
    missing: what a null becomes before the transform (`zero`, the training `mean` or `max`).
    shrink_by / shrink_strength: a rate measured on few events is pulled towards the population
    rate: (value * n + strength * prior) / (n + strength), n = the `shrink_by` column (e.g. orders).
    group: features of one group share the group's weight (weight / sqrt(features in the group)), so
    a concept measured three ways does not count three times.
    """

    name: str
    transform: str = "none"
    missing: str = "mean"
    shrink_by: str | None = None
    shrink_strength: float = 0.0
    group: str = ""


@dataclass(frozen=True)
class NamingRule:
    """A segment name for clusters whose centroid meets every condition (in standard deviations
    from the average eligible customer: `above` means z > value, `below` z < value)."""

    name: str
    above: tuple[tuple[str, float], ...]
    below: tuple[tuple[str, float], ...]

    def matches(self, z: dict[str, float]) -> bool:
        return all(z[f] > v for f, v in self.above) and all(z[f] < v for f, v in self.below)


@dataclass(frozen=True)
class SegmentDefinition:
    name: str
    version: str
    family: str
    description: str
    feature_specs: tuple[FeatureSpec, ...]
    group_weights: dict[str, float]
    naming_rules: tuple[NamingRule, ...]
    default_name: str
    algorithms: tuple[str, ...]
    k_min: int
    k_max: int
    sample_size: int
    bootstrap_rounds: int
    bootstrap_sample_size: int
    k_selection: str
    gap_min_gain: float
    gap_references: int
    surrogate_max_depth: int
    surrogate_min_samples_leaf: int
    min_orders: int
    require_lawful_basis: bool
    min_training_customers: int
    gates: PromotionGates
    content_sha256: str
    raw: dict[str, Any]
    model_name: str = SEGMENTATION_MODEL

    @property
    def k_range(self) -> range:
        return range(self.k_min, self.k_max + 1)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.feature_specs)

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The columns a model under this definition reads: its features and their shrinkage counts."""
        extra = [f.shrink_by for f in self.feature_specs if f.shrink_by and f.shrink_by not in self.features]
        return self.features + tuple(dict.fromkeys(extra))

    def feature_weights(self) -> tuple[float, ...]:
        """Per feature: its group's weight divided by the square root of the group's size."""
        sizes: dict[str, int] = {}
        for f in self.feature_specs:
            sizes[f.group or f.name] = sizes.get(f.group or f.name, 0) + 1
        return tuple(
            self.group_weights.get(f.group or f.name, 1.0) / sizes[f.group or f.name] ** 0.5 for f in self.feature_specs
        )


def _feature_spec(entry: Any) -> FeatureSpec:
    if isinstance(entry, str):  # a bare name: used as is, its own group
        return FeatureSpec(name=entry)
    unknown = sorted(set(entry) - {"name", "transform", "missing", "shrink", "group"})
    if unknown:
        raise DefinitionError(f"feature {entry.get('name')!r}: unknown keys {unknown}")
    spec = FeatureSpec(
        name=str(entry["name"]),
        transform=str(entry.get("transform", "none")),
        missing=str(entry.get("missing", "mean")),
        shrink_by=(entry.get("shrink") or {}).get("by"),
        shrink_strength=float((entry.get("shrink") or {}).get("strength", 0.0)),
        group=str(entry.get("group", "")),
    )
    if spec.transform not in TRANSFORMS:
        raise DefinitionError(f"feature {spec.name}: transform {spec.transform!r} not in {TRANSFORMS}")
    if spec.missing not in MISSING:
        raise DefinitionError(f"feature {spec.name}: missing {spec.missing!r} not in {MISSING}")
    if spec.shrink_by and spec.shrink_strength <= 0:
        raise DefinitionError(f"feature {spec.name}: shrink strength must be > 0")
    return spec


def _naming_rules(raw: list[dict[str, Any]], features: tuple[str, ...]) -> tuple[NamingRule, ...]:
    rules = []
    for entry in raw:
        above, below = [], []
        for feature, cond in (entry.get("when") or {}).items():
            if feature not in features:
                raise DefinitionError(
                    f"naming rule {entry.get('name')!r} uses {feature!r}, which is not a feature of the definition"
                )
            bad = sorted(set(cond) - {"above", "below"})
            if bad:
                raise DefinitionError(f"naming rule {entry.get('name')!r}: conditions must be above/below, got {bad}")
            if "above" in cond:
                above.append((feature, float(cond["above"])))
            if "below" in cond:
                below.append((feature, float(cond["below"])))
        rules.append(NamingRule(name=str(entry["name"]), above=tuple(above), below=tuple(below)))
    return tuple(rules)


def parse_definition(raw: dict[str, Any], registry: dict | None = None) -> SegmentDefinition:
    """Validate and type a definition dict (see the YAML for the fields). Every feature (and every
    shrinkage count) must be in the feature registry and allowed for profiling."""
    try:
        version = str(raw["version"])
        if not SEMVER.match(version):
            raise DefinitionError(f"version {version!r} is not semantic (MAJOR.MINOR.PATCH)")
        specs = tuple(_feature_spec(e) for e in raw["features"])
        names = [f.name for f in specs]
        if len(set(names)) != len(names):
            raise DefinitionError(f"duplicate features in {names}")
        try:
            require_purpose(
                names + [f.shrink_by for f in specs if f.shrink_by], "profiling", registry or load_registry()
            )
        except FeatureRegistryError as err:
            raise DefinitionError(str(err)) from None
        cand, sur, gates, elig = raw["candidates"], raw["surrogate"], raw["promotion_gates"], raw["eligibility"]
        algorithms = tuple(cand["algorithms"])
        bad = sorted(set(algorithms) - set(ALGORITHMS))
        if bad or not algorithms:
            raise DefinitionError(
                f"algorithms must be a non-empty subset of {list(ALGORITHMS)}, got {list(algorithms)}"
            )
        k_min, k_max = int(cand["k_min"]), int(cand["k_max"])
        if not 2 <= k_min <= k_max <= 20:
            raise DefinitionError(f"need 2 <= k_min <= k_max <= 20, got {k_min}..{k_max}")
        naming = raw.get("naming") or {}
        group_weights = {str(g): float(w) for g, w in (raw.get("group_weights") or {}).items()}
        if any(w <= 0 for w in group_weights.values()):
            raise DefinitionError(f"group weights must be > 0, got {group_weights}")
        definition = SegmentDefinition(
            name=str(raw["name"]),
            version=version,
            family=str(raw["family"]),
            description=str(raw.get("description", "")).strip(),
            feature_specs=specs,
            group_weights=group_weights,
            naming_rules=_naming_rules(naming.get("rules") or [], tuple(names)),
            default_name=str(naming.get("default", "Customer group")),
            algorithms=algorithms,
            k_min=k_min,
            k_max=k_max,
            sample_size=int(cand["sample_size"]),
            bootstrap_rounds=int(cand["bootstrap_rounds"]),
            bootstrap_sample_size=int(cand["bootstrap_sample_size"]),
            k_selection=str(cand.get("k_selection", "silhouette")),
            gap_min_gain=float(cand.get("gap_min_gain", 0.02)),
            gap_references=int(cand.get("gap_references", 5)),
            surrogate_max_depth=int(sur["max_depth"]),
            surrogate_min_samples_leaf=int(sur["min_samples_leaf"]),
            min_orders=int(elig["min_orders"]),
            require_lawful_basis=bool(
                elig["require_lawful_basis"] if "require_lawful_basis" in elig else elig["require_profiling_consent"]
            ),
            min_training_customers=int(elig["min_training_customers"]),
            gates=PromotionGates(
                min_silhouette=float(gates["min_silhouette"]),
                min_stability_ari=float(gates["min_stability_ari"]),
                min_segment_share=float(gates["min_segment_share"]),
                min_surrogate_fidelity=float(gates["min_surrogate_fidelity"]),
                k_min=int(gates["k_min"]),
                k_max=int(gates["k_max"]),
            ),
            content_sha256=content_digest(raw),
            raw=raw,
            model_name=str(raw.get("model_name", SEGMENTATION_MODEL)),
        )
    except KeyError as err:
        raise DefinitionError(f"missing field {err}") from None
    if not MODEL_NAME.match(definition.model_name):
        raise DefinitionError(
            f"model_name {definition.model_name!r}: lowercase letters, digits and _, starting with a letter"
        )
    if definition.k_selection not in K_SELECTION:
        raise DefinitionError(f"k_selection {definition.k_selection!r} not in {K_SELECTION}")
    if definition.bootstrap_rounds < 2:
        raise DefinitionError("bootstrap_rounds must be >= 2 to measure stability")
    return definition


def load_definition(path: Path = BEHAVIOURAL, lock_path: Path = VERSION_LOCK) -> SegmentDefinition:
    """Read, validate and version-check a definition file."""
    raw = yaml.safe_load(Path(path).read_text())
    definition = parse_definition(raw)
    try:
        check_version_lock(definition, read_lock(lock_path))
    except VersionLockError as err:
        raise DefinitionError(str(err)) from None
    return definition
