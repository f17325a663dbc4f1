"""Segment definitions as versioned configuration (YAML in `ml/definitions/`).

A definition says which features a segmentation may use, which algorithms and k it may choose from,
how the surrogate rules are grown and which quality gates a model must pass to become champion. Its
semantic `version` travels with every model (MLflow param and tag) and every assignment row, and is
written to `segments.segment_definitions`.

The version must change when the content changes: `versions.lock` records the content digest of
every released version; `check_version_lock()` (run by the tests and at load time) refuses content
that differs from the digest recorded for its version.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFINITIONS_DIR = Path(__file__).resolve().parent / "definitions"
BEHAVIOURAL = DEFINITIONS_DIR / "behavioural_segmentation.yaml"
VERSION_LOCK = DEFINITIONS_DIR / "versions.lock"
ALGORITHMS = ("kmeans", "gaussian_mixture")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


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
class SegmentDefinition:
    name: str
    version: str
    family: str
    description: str
    features: tuple[str, ...]
    algorithms: tuple[str, ...]
    k_min: int
    k_max: int
    sample_size: int
    bootstrap_rounds: int
    bootstrap_sample_size: int
    surrogate_max_depth: int
    surrogate_min_samples_leaf: int
    min_orders: int
    require_profiling_consent: bool
    min_training_customers: int
    gates: PromotionGates
    content_sha256: str
    raw: dict[str, Any]

    @property
    def k_range(self) -> range:
        return range(self.k_min, self.k_max + 1)


def content_digest(raw: dict[str, Any]) -> str:
    """sha256 of the definition's content without its version (canonical JSON)."""
    body = {k: v for k, v in raw.items() if k != "version"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def parse_definition(raw: dict[str, Any], known_features: tuple[str, ...]) -> SegmentDefinition:
    """Validate and type a definition dict (see the YAML for the fields)."""
    try:
        version = str(raw["version"])
        if not SEMVER.match(version):
            raise DefinitionError(f"version {version!r} is not semantic (MAJOR.MINOR.PATCH)")
        features = tuple(raw["features"])
        unknown = sorted(set(features) - set(known_features))
        if unknown:
            raise DefinitionError(f"unknown features {unknown}; known: {list(known_features)}")
        cand, sur, gates, elig = raw["candidates"], raw["surrogate"], raw["promotion_gates"], raw["eligibility"]
        algorithms = tuple(cand["algorithms"])
        bad = sorted(set(algorithms) - set(ALGORITHMS))
        if bad or not algorithms:
            raise DefinitionError(f"algorithms must be a non-empty subset of {list(ALGORITHMS)}, got {list(algorithms)}")
        k_min, k_max = int(cand["k_min"]), int(cand["k_max"])
        if not 2 <= k_min <= k_max <= 20:
            raise DefinitionError(f"need 2 <= k_min <= k_max <= 20, got {k_min}..{k_max}")
        definition = SegmentDefinition(
            name=str(raw["name"]), version=version, family=str(raw["family"]), description=str(raw.get("description", "")).strip(),
            features=features, algorithms=algorithms, k_min=k_min, k_max=k_max,
            sample_size=int(cand["sample_size"]), bootstrap_rounds=int(cand["bootstrap_rounds"]),
            bootstrap_sample_size=int(cand["bootstrap_sample_size"]),
            surrogate_max_depth=int(sur["max_depth"]), surrogate_min_samples_leaf=int(sur["min_samples_leaf"]),
            min_orders=int(elig["min_orders"]), require_profiling_consent=bool(elig["require_profiling_consent"]),
            min_training_customers=int(elig["min_training_customers"]),
            gates=PromotionGates(
                min_silhouette=float(gates["min_silhouette"]), min_stability_ari=float(gates["min_stability_ari"]),
                min_segment_share=float(gates["min_segment_share"]),
                min_surrogate_fidelity=float(gates["min_surrogate_fidelity"]),
                k_min=int(gates["k_min"]), k_max=int(gates["k_max"]),
            ),
            content_sha256=content_digest(raw), raw=raw,
        )
    except KeyError as err:
        raise DefinitionError(f"missing field {err}") from None
    if definition.bootstrap_rounds < 2:
        raise DefinitionError("bootstrap_rounds must be >= 2 to measure stability")
    return definition


def read_lock(path: Path = VERSION_LOCK) -> dict[str, dict[str, str]]:
    return json.loads(path.read_text()) if path.exists() else {}


def check_version_lock(definition: SegmentDefinition, lock: dict[str, dict[str, str]]) -> None:
    """Raise when this content is not what was released under this version."""
    recorded = lock.get(definition.name, {}).get(definition.version)
    if recorded is None:
        raise DefinitionError(
            f"{definition.name} {definition.version} is not in versions.lock: record it "
            f'("{definition.version}": "{definition.content_sha256}") when you release it'
        )
    if recorded != definition.content_sha256:
        raise DefinitionError(
            f"{definition.name} changed but its version {definition.version} did not: bump the version "
            f"and record the new digest {definition.content_sha256} in versions.lock"
        )


def load_definition(path: Path = BEHAVIOURAL, lock_path: Path = VERSION_LOCK) -> SegmentDefinition:
    """Read, validate and version-check a definition file."""
    from ml.segmentation import SEGMENTATION_FEATURES

    raw = yaml.safe_load(Path(path).read_text())
    definition = parse_definition(raw, SEGMENTATION_FEATURES)
    check_version_lock(definition, read_lock(lock_path))
    return definition
