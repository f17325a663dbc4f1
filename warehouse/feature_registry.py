"""The feature registry: what each column of `marts.customer_features` means and who may use it for what.

The registry lives next to the model, in the dbt schema file (`config.meta` of every column of
`customer_features` in `dbt_project/models/marts/core/_core__models.yml`), so dbt docs show it and a
new feature cannot be added without its entry. Each feature has a group (value, behaviour,
technographic, support, feedback, geography, governance), a unit, an owner, a PII class and the purposes it
is allowed for. Segmentation is *profiling*: a definition may only use features allowed for it,
and training reads only those columns (plus the eligibility columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

REGISTRY_FILE = Path(__file__).resolve().parents[1] / "dbt_project" / "models" / "marts" / "core" / "_core__models.yml"
FEATURES_MODEL = "customer_features"
PII_CLASSES = ("none", "pseudonymous_id", "quasi_identifier", "direct")
PURPOSES = ("profiling", "reporting", "eligibility")
# Columns the scoring path needs besides the model's features: who may be placed (ml/segmentation/fallback.py).
ELIGIBILITY_COLUMNS = (
    "customer_id",
    "as_of_date",
    "frequency",
    "lineless_order_count",
    "has_profiling_consent",
    "profiling_basis",
)


class FeatureRegistryError(ValueError):
    """A feature that is not registered, or not allowed for the purpose it is used for."""


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    description: str
    group: str
    unit: str
    owner: str
    pii_class: str
    allowed_purposes: tuple[str, ...]


def load_registry(path: Path = REGISTRY_FILE, model: str = FEATURES_MODEL) -> dict[str, FeatureInfo]:
    """Column name -> FeatureInfo for every column of the features model, validated."""
    doc = yaml.safe_load(Path(path).read_text())
    entries = [m for m in doc.get("models", []) if m.get("name") == model]
    if not entries:
        raise FeatureRegistryError(f"model {model!r} not found in {path}")
    registry: dict[str, FeatureInfo] = {}
    for col in entries[0].get("columns", []):
        meta = (col.get("config") or {}).get("meta") or col.get("meta") or {}
        missing = [k for k in ("feature_group", "owner", "pii_class", "allowed_purposes") if k not in meta]
        if missing:
            raise FeatureRegistryError(f"{model}.{col['name']}: registry entry lacks {missing}")
        if meta["pii_class"] not in PII_CLASSES:
            raise FeatureRegistryError(f"{model}.{col['name']}: pii_class {meta['pii_class']!r} not in {PII_CLASSES}")
        purposes = tuple(meta["allowed_purposes"])
        if set(purposes) - set(PURPOSES):
            raise FeatureRegistryError(
                f"{model}.{col['name']}: unknown purposes {sorted(set(purposes) - set(PURPOSES))}"
            )
        registry[col["name"]] = FeatureInfo(
            name=col["name"],
            description=str(col.get("description", "")).strip(),
            group=str(meta["feature_group"]),
            unit=str(meta.get("unit", "")),
            owner=str(meta["owner"]),
            pii_class=str(meta["pii_class"]),
            allowed_purposes=purposes,
        )
    return registry


def require_purpose(features: tuple[str, ...] | list[str], purpose: str, registry: dict[str, FeatureInfo]) -> None:
    """Raise unless every feature is registered and allowed for `purpose`."""
    unknown = sorted(set(features) - set(registry))
    if unknown:
        raise FeatureRegistryError(f"features not in the registry ({REGISTRY_FILE.name}): {unknown}")
    refused = sorted(f for f in features if purpose not in registry[f].allowed_purposes)
    if refused:
        details = ", ".join(
            f"{f} ({registry[f].pii_class}; allowed: {list(registry[f].allowed_purposes)})" for f in refused
        )
        raise FeatureRegistryError(f"features not allowed for {purpose}: {details}")


def profiling_features(registry: dict[str, FeatureInfo] | None = None) -> tuple[str, ...]:
    """Every registered feature a segmentation may use (allowed for profiling, not a key)."""
    registry = registry or load_registry()
    return tuple(n for n, f in registry.items() if "profiling" in f.allowed_purposes and f.group != "key")
