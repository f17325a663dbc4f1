"""Segment definitions: validated, and their version must change with their content."""

import copy

import pytest
import yaml

from ml.segmentation.definition import (
    BEHAVIOURAL,
    VERSION_LOCK,
    DefinitionError,
    load_definition,
    parse_definition,
)
from ml.versioning import VersionLockError, check_version_lock, content_digest, read_lock


def raw():
    return yaml.safe_load(BEHAVIOURAL.read_text())


def test_the_shipped_definition_matches_its_locked_version():
    definition = load_definition()
    assert read_lock(VERSION_LOCK)[definition.name][definition.version] == definition.content_sha256


def test_changed_content_without_a_version_bump_is_refused():
    changed = raw()
    changed["promotion_gates"]["min_stability_ari"] = 0.5
    definition = parse_definition(changed)
    with pytest.raises(VersionLockError, match="bump the version"):
        check_version_lock(definition, read_lock(VERSION_LOCK))
    changed["version"] = "2.0.1"
    with pytest.raises(VersionLockError, match="not in versions.lock"):
        check_version_lock(parse_definition(changed), read_lock(VERSION_LOCK))


def test_loading_changed_content_is_refused(tmp_path):
    changed = raw()
    changed["promotion_gates"]["min_stability_ari"] = 0.5
    path = tmp_path / "behavioural_segmentation.yaml"
    path.write_text(yaml.safe_dump(changed))
    with pytest.raises(DefinitionError, match="bump the version"):
        load_definition(path)


def test_the_digest_ignores_only_the_version():
    a, b = raw(), raw()
    b["version"] = "9.9.9"
    assert content_digest(a) == content_digest(b)
    b["features"] = b["features"][:-1]
    assert content_digest(a) != content_digest(b)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("version",), "1.0", "semantic"),
        (("features",), ["recency_days", "email"], "not in the registry"),
        (("features",), ["recency_days", "country"], "not allowed for profiling"),
        (("features",), ["recency_days", "has_profiling_consent"], "not allowed for profiling"),
        (("features",), [{"name": "recency_days", "transform": "cube"}], "transform"),
        (("features",), [{"name": "aov_base", "shrink": {"by": "email", "strength": 5}}], "not in the registry"),
        (
            ("naming",),
            {"rules": [{"name": "X", "when": {"items_per_order": {"above": 1}}}]},
            "not a feature of the definition",
        ),
        (("candidates", "k_selection"), "elbow", "k_selection"),
        (("candidates", "algorithms"), ["dbscan"], "algorithms"),
        (("candidates", "k_min"), 9, "k_min"),
    ],
)
def test_invalid_definitions_say_why(path, value, message):
    bad = copy.deepcopy(raw())
    target = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(DefinitionError, match=message):
        parse_definition(bad)


def test_every_shipped_definition_is_locked_and_uses_only_profiling_features():
    from ml.segmentation.definition import DEFINITIONS_DIR
    from warehouse.feature_registry import load_registry

    registry = load_registry()
    for path in sorted(p for p in DEFINITIONS_DIR.glob("*.yaml") if p.name != "playbooks.yaml"):
        definition = load_definition(path)
        for column in definition.input_columns:
            assert "profiling" in registry[column].allowed_purposes, (path.name, column)
            assert registry[column].pii_class in ("none",), (path.name, column)
