"""The prediction definition: versioned configuration of the churn and value models (YAML, `kind: prediction`).

It says over which horizon outcomes are measured (churn = no completed order in the `horizon_days` after a
snapshot), on which past dates training snapshots are taken, who is predicted, which registered features the
models may read (allowed for profiling, like a segmentation's), which algorithms are tried and which
out-of-time gates a trained version must pass to become champion. Its semantic `version` travels with every
model and prediction; `versions.lock` refuses content changed without a version bump, as for segment
definitions. The embedded one is `ml/prediction/definitions/prediction.yaml`; a user project keeps its own
in `definitions/` (`prediction:` in `segments.yaml`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ml.segmentation.definition import MODEL_NAME, SEMVER
from ml.segmentation.rfm import rfm_segment_keys, segment_key
from ml.versioning import VersionLockError, check_version_lock, content_digest, read_lock
from warehouse.feature_registry import FeatureRegistryError, load_registry, require_purpose

DEFINITIONS_DIR = Path(__file__).resolve().parent / "definitions"
PREDICTION = DEFINITIONS_DIR / "prediction.yaml"
KIND = "prediction"
CHURN_ALGORITHMS = ("gradient_boosting", "logistic_regression")
CALIBRATIONS = ("isotonic", "sigmoid")
VALUE_CANDIDATES = ("bg_nbd", "gradient_boosting")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FAMILY = "predictive"  # the segment family the definition's `segments` place customers in
# What a predictive segment's conditions may test, with the words its reason text uses.
# Numbers, bounded by `min` and/or `max` (inclusive):
NUMERIC_MEASURES = {
    "churn_probability": "churn probability",
    "value_percentile": "predicted revenue percentile",
    "spend_percentile": "past spend percentile",
    "value_growth": "predicted revenue growth over past revenue per horizon",
}
# RFM segment keys, tested with `in` or `not_in`:
RFM_MEASURES = {
    "rfm_segment": "RFM segment now",
    "rfm_segment_if_no_order": "RFM segment without an order in the horizon",
}
SEGMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ,.&()'/+-]{0,79}$")


class PredictionDefinitionError(ValueError):
    """A prediction definition that cannot be used, with the reason."""


@dataclass(frozen=True)
class ChurnGates:
    """What a churn challenger must reach out of time to become champion."""

    min_auc: float
    max_brier: float
    max_ece: float
    max_auc_spread: float
    min_auc_gain_over_recency: float

    def failures(self, metrics: dict[str, float]) -> list[str]:
        """Human-readable reasons the out-of-time metrics fail the gates (empty = promotable)."""
        checks = (
            ("auc", ">=", self.min_auc),
            ("brier", "<=", self.max_brier),
            ("ece", "<=", self.max_ece),
            ("auc_spread", "<=", self.max_auc_spread),
            ("auc_gain_over_recency", ">=", self.min_auc_gain_over_recency),
        )
        return _failures(metrics, checks)


@dataclass(frozen=True)
class ValueGates:
    """What a value challenger must reach out of time to become champion."""

    min_spearman: float
    min_top_decile_gain_over_last_period: float

    def failures(self, metrics: dict[str, float]) -> list[str]:
        checks = (
            ("spearman", ">=", self.min_spearman),
            ("top_decile_gain_over_last_period", ">=", self.min_top_decile_gain_over_last_period),
        )
        return _failures(metrics, checks)


def _failures(metrics: dict[str, float], checks) -> list[str]:
    out = []
    for metric, op, bound in checks:
        value = metrics.get(metric)
        ok = value is not None and (value >= bound if op == ">=" else value <= bound)  # NaN fails both
        if not ok:
            shown = value if value is None else round(value, 4)
            out.append(f"{metric}={shown} {'<' if op == '>=' else '>'} {bound}")
    return out


@dataclass(frozen=True)
class Condition:
    """One test of a predictive segment: `measure` within [low, high] (numbers; None = unbounded), or
    `measure` in / not in `keys` (RFM segment keys)."""

    measure: str
    low: float | None = None
    high: float | None = None
    keys: tuple[str, ...] = ()
    negate: bool = False

    def describe(self) -> str:
        if self.measure in RFM_MEASURES:
            return f"{RFM_MEASURES[self.measure]} {'not in' if self.negate else 'in'} {', '.join(self.keys)}"
        bounds = [f">= {self.low:g}"] if self.low is not None else []
        bounds += [f"<= {self.high:g}"] if self.high is not None else []
        return f"{NUMERIC_MEASURES[self.measure]} {' and '.join(bounds)}"


@dataclass(frozen=True)
class PredictiveSegment:
    """A named segment of the predictive family: a customer belongs when every condition holds (and no
    earlier segment took them). The last segment of a definition has no condition: it takes the rest."""

    name: str
    key: str
    description: str
    conditions: tuple[Condition, ...]

    def rule(self) -> str:
        """The conditions in words (the reason text of the segment's rows)."""
        if not self.conditions:
            return "no earlier predictive segment applies"
        return "; ".join(c.describe() for c in self.conditions)


@dataclass(frozen=True)
class PredictionDefinition:
    name: str
    version: str
    description: str
    horizon_days: int
    snapshot_count: int
    snapshot_every_days: int
    evaluate_last: int
    # at most this many customers scored per evaluated date (the same ones at every date); None: all
    max_evaluated_customers: int | None
    min_orders: int
    require_lawful_basis: bool
    min_training_rows: int
    max_training_rows: int
    features: tuple[str, ...]
    churn_model_name: str
    churn_algorithm: str
    calibration: str
    churn_gates: ChurnGates
    value_model_name: str
    value_candidates: tuple[str, ...]
    value_gates: ValueGates
    segments: tuple[PredictiveSegment, ...]
    content_sha256: str
    raw: dict[str, Any]

    @property
    def family(self) -> str:
        """The segment family its segments form (what `ml.segment_definitions` records it under)."""
        return FAMILY

    def dbt_settings(self, snapshot_dates: tuple[str, ...] = ()) -> str:
        """SEGMENTS_PREDICTION for the dbt steps (JSON read by the `prediction_setting` macro): the horizon and
        the snapshot dates (`snapshot_dates` when given, else count and spacing from the definition)."""
        for d in snapshot_dates:
            if not DATE.match(d):
                raise PredictionDefinitionError(f"snapshot date {d!r} is not YYYY-MM-DD")
        return json.dumps(
            {
                "horizon_days": self.horizon_days,
                "snapshot_count": self.snapshot_count,
                "snapshot_every_days": self.snapshot_every_days,
                "snapshot_dates": list(snapshot_dates),
            }
        )


def _int(section: dict, key: str, low: int, high: int) -> int:
    value = int(section[key])
    if not low <= value <= high:
        raise PredictionDefinitionError(f"{key} must be in {low}..{high}, got {value}")
    return value


def _model_name(value: Any, key: str) -> str:
    name = str(value)
    if not MODEL_NAME.match(name):
        raise PredictionDefinitionError(f"{key} {name!r}: lowercase letters, digits and _, starting with a letter")
    return name


def _condition(measure: str, spec: Any, rfm_keys: frozenset[str]) -> Condition:
    if measure in NUMERIC_MEASURES:
        if not isinstance(spec, dict) or not spec or set(spec) - {"min", "max"}:
            raise PredictionDefinitionError(f"{measure}: expected {{min: x}} and/or {{max: y}}, got {spec!r}")
        low = None if spec.get("min") is None else float(spec["min"])
        high = None if spec.get("max") is None else float(spec["max"])
        if low is not None and high is not None and low > high:
            raise PredictionDefinitionError(f"{measure}: min {low} above max {high}")
        return Condition(measure, low=low, high=high)
    if measure in RFM_MEASURES:
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in ("in", "not_in"):
            raise PredictionDefinitionError(f"{measure}: expected {{in: [keys]}} or {{not_in: [keys]}}, got {spec!r}")
        op, keys = next(iter(spec.items()))
        keys = tuple(str(k) for k in (keys or ()))
        unknown = sorted(set(keys) - rfm_keys)
        if not keys or unknown:
            raise PredictionDefinitionError(
                f"{measure}: {'unknown RFM segment keys ' + str(unknown) if unknown else 'no key'}; "
                f"known: {sorted(rfm_keys)}"
            )
        return Condition(measure, keys=keys, negate=op == "not_in")
    raise PredictionDefinitionError(
        f"unknown condition {measure!r}: one of {sorted([*NUMERIC_MEASURES, *RFM_MEASURES])}"
    )


def _segments(raw: Any) -> tuple[PredictiveSegment, ...]:
    """The predictive segments in order: names valid and unique, only the last without conditions."""
    if not isinstance(raw, list) or len(raw) < 2:
        raise PredictionDefinitionError("segments: a list of at least two segments, the last without `when`")
    rfm_keys = frozenset(rfm_segment_keys())
    out = []
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or set(item) - {"name", "description", "when"}:
            raise PredictionDefinitionError(f"segments[{position}]: expected name, description and when")
        name = str(item.get("name", ""))
        if not SEGMENT_NAME.match(name):
            raise PredictionDefinitionError(
                f"segments[{position}]: name {name!r}: 1-80 letters, digits, spaces and , . & ( ) ' / + -"
            )
        when = item.get("when") or {}
        if not isinstance(when, dict):
            raise PredictionDefinitionError(f"segment {name!r}: `when` must map conditions to bounds")
        conditions = tuple(_condition(str(m), spec, rfm_keys) for m, spec in when.items())
        last = position == len(raw)
        if last == bool(conditions):
            raise PredictionDefinitionError(
                f"segment {name!r}: "
                + ("the last segment takes every customer left: no `when`" if last else "needs a `when` condition")
            )
        description = str(item.get("description", "")).strip()
        out.append(PredictiveSegment(name, segment_key(name, "pred"), description, conditions))
    keys = [s.key for s in out]
    if len(set(keys)) != len(keys):
        raise PredictionDefinitionError(f"segments: names must differ (as keys), got {keys}")
    return tuple(out)


def parse_prediction_definition(raw: dict[str, Any], registry: dict | None = None) -> PredictionDefinition:
    """Validate and type a prediction definition dict (the YAML's fields). Every feature must be registered
    and allowed for profiling: predicting a person's behaviour is profiling."""
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        raise PredictionDefinitionError(f"not a prediction definition (expected `kind: {KIND}`)")
    try:
        version = str(raw["version"])
        if not SEMVER.match(version):
            raise PredictionDefinitionError(f"version {version!r} is not semantic (MAJOR.MINOR.PATCH)")
        features = tuple(str(f) for f in raw["features"])
        if not features or len(set(features)) != len(features):
            raise PredictionDefinitionError(f"features must be a non-empty list without duplicates, got {features}")
        try:
            require_purpose(list(features), "profiling", registry or load_registry())
        except FeatureRegistryError as err:
            raise PredictionDefinitionError(str(err)) from None
        snapshots, population, churn, value = raw["snapshots"], raw["population"], raw["churn"], raw["value"]
        gates, vgates = churn["gates"], value["gates"]
        definition = PredictionDefinition(
            name=str(raw["name"]),
            version=version,
            description=str(raw.get("description", "")).strip(),
            horizon_days=_int(raw, "horizon_days", 1, 9999),
            snapshot_count=_int(snapshots, "count", 2, 99),
            snapshot_every_days=_int(snapshots, "every_days", 1, 9999),
            evaluate_last=_int(snapshots, "evaluate_last", 1, 98),
            max_evaluated_customers=(
                _int(snapshots, "max_evaluated_customers", 1000, 10**9)
                if "max_evaluated_customers" in snapshots
                else None
            ),
            min_orders=_int(population, "min_orders", 0, 1000),
            require_lawful_basis=bool(population["require_lawful_basis"]),
            min_training_rows=_int(population, "min_training_rows", 1, 10**9),
            max_training_rows=_int(population, "max_training_rows", 1000, 10**9),
            features=features,
            churn_model_name=_model_name(churn["model_name"], "churn.model_name"),
            churn_algorithm=str(churn["algorithm"]),
            calibration=str(churn["calibration"]),
            churn_gates=ChurnGates(
                min_auc=float(gates["min_auc"]),
                max_brier=float(gates["max_brier"]),
                max_ece=float(gates["max_ece"]),
                max_auc_spread=float(gates["max_auc_spread"]),
                min_auc_gain_over_recency=float(gates["min_auc_gain_over_recency"]),
            ),
            value_model_name=_model_name(value["model_name"], "value.model_name"),
            value_candidates=tuple(str(c) for c in value["candidates"]),
            value_gates=ValueGates(
                min_spearman=float(vgates["min_spearman"]),
                min_top_decile_gain_over_last_period=float(vgates["min_top_decile_gain_over_last_period"]),
            ),
            segments=_segments(raw["segments"]),
            content_sha256=content_digest(raw),
            raw=raw,
        )
    except KeyError as err:
        raise PredictionDefinitionError(f"missing field {err}") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, PredictionDefinitionError):
            raise
        raise PredictionDefinitionError(f"invalid value: {err}") from None
    if definition.evaluate_last >= definition.snapshot_count:
        raise PredictionDefinitionError(
            f"snapshots.evaluate_last ({definition.evaluate_last}) must be below snapshots.count "
            f"({definition.snapshot_count}): the earliest snapshots are what the first evaluated model learns from"
        )
    if definition.churn_algorithm not in CHURN_ALGORITHMS:
        raise PredictionDefinitionError(f"churn.algorithm {definition.churn_algorithm!r} not in {CHURN_ALGORITHMS}")
    if definition.calibration not in CALIBRATIONS:
        raise PredictionDefinitionError(f"churn.calibration {definition.calibration!r} not in {CALIBRATIONS}")
    bad = sorted(set(definition.value_candidates) - set(VALUE_CANDIDATES))
    if bad or not definition.value_candidates:
        raise PredictionDefinitionError(f"value.candidates must be a non-empty subset of {list(VALUE_CANDIDATES)}")
    if definition.churn_model_name == definition.value_model_name:
        raise PredictionDefinitionError("churn.model_name and value.model_name must differ")
    return definition


def load_prediction_definition(path: Path = PREDICTION, lock_path: Path | None = None) -> PredictionDefinition:
    """Read, validate and version-check a prediction definition file (its lock: `lock_path`, else the
    `versions.lock` beside it)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise PredictionDefinitionError(f"{path}: not valid YAML: {err}") from None
    definition = parse_prediction_definition(raw)
    try:
        check_version_lock(definition, read_lock(lock_path or Path(path).parent / "versions.lock"))
    except VersionLockError as err:
        raise PredictionDefinitionError(str(err)) from None
    return definition
