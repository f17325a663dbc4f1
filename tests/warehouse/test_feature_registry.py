"""The feature registry (dbt column meta of marts.customer_features) is complete and enforced."""

import re

import pytest
import yaml

from warehouse.feature_registry import (
    REGISTRY_FILE,
    FeatureRegistryError,
    load_registry,
    profiling_features,
    require_purpose,
)

# the features are defined once, in the macro customer_features.sql and customer_feature_snapshots.sql call
MODEL_SQL = REGISTRY_FILE.parents[3] / "macros" / "customer_features.sql"


def test_every_column_the_model_selects_is_registered_and_nothing_else():
    """The final select of customer_features.sql names its columns `as <name>` or `c.<name>`;
    the registry must list exactly those (the integration test checks the built table too)."""
    final = MODEL_SQL.read_text().split("final as (")[1].split("from customers as c")[0]
    selected = set(re.findall(r"\bas (\w+),?\s*$", final, flags=re.M)) | set(
        re.findall(r"^\s+\w+\.(\w+),?\s*$", final, flags=re.M)
    )
    assert selected == set(load_registry())


def test_entries_carry_owner_pii_class_and_purposes():
    registry = load_registry()
    assert registry["country"].pii_class == "quasi_identifier"
    assert "profiling" not in registry["country"].allowed_purposes
    assert "profiling" not in registry["has_profiling_consent"].allowed_purposes
    assert all(f.owner and f.description for f in registry.values())
    assert "recency_days" in profiling_features(registry) and "customer_id" not in profiling_features(registry)


def test_purpose_is_enforced():
    registry = load_registry()
    require_purpose(["recency_days", "aov_base"], "profiling", registry)
    with pytest.raises(FeatureRegistryError, match="not allowed for profiling: country"):
        require_purpose(["recency_days", "country"], "profiling", registry)
    with pytest.raises(FeatureRegistryError, match="not in the registry"):
        require_purpose(["favourite_colour"], "profiling", registry)


def test_an_entry_without_pii_class_is_refused(tmp_path):
    doc = yaml.safe_load(REGISTRY_FILE.read_text())
    model = next(m for m in doc["models"] if m["name"] == "customer_features")
    del model["columns"][3]["config"]["meta"]["pii_class"]
    path = tmp_path / "models.yml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(FeatureRegistryError, match="lacks"):
        load_registry(path)
