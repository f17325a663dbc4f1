"""The dbt conventions of DESIGN.md section 3, checked on the parsed manifest (`manifest.json`).

Each check takes a manifest dict and returns its violations (empty list = the convention holds):

grain
    Every model's description states its grain: it contains "one row per" (any case), as in
    "One row per customer." or "SCD2 segment membership: one row per customer, family and period".

primary key
    Every model declares its primary key in `config.meta.primary_key` (dbt_project/models/**/_*__models.yml):
    a column name, or a list of column names for a composite key. A one-column key must have both a
    `unique` and a `not_null` test on that column; in a model with an enforced contract a `not_null`
    constraint replaces the `not_null` test (DuckDB refuses the null while the table is built: as blocking,
    and no extra query). A composite key must have a model-level `composite_primary_key` test on exactly
    its columns (the project's own generic test, dbt_project/tests/generic/composite_primary_key.sql; no
    package needed), which fails on a repeated combination and on a null in any key column in one query.
    Tests configured with severity `warn` do not count: a key test must block.

source() only in staging
    A model that depends on a source (a `{{ source() }}` call, a `-- depends_on: {{ source() }}` hint
    included) lives under models/staging/. Everything else builds on the staging models with `ref()`.
    Singular data tests (dbt_project/tests/) may compare a source with its staging model.

contracts on the BI-facing tables
    Every model in the `segments` schema has an enforced contract and a `data_type` for each column.

Every check is shown to fail on a small in-memory manifest with one deliberate defect, and to pass on
the project's real manifest (parsed by `dbt parse` into a temporary target path: the project's own
target/ and logs/ stay untouched).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
GRAIN_PHRASE = "one row per"
COMPOSITE_KEY_TEST = "composite_primary_key"
STAGING_PREFIX = "models/staging/"
CONTRACTED_SCHEMAS = ("segments",)

Manifest = dict


# --- the checks --------------------------------------------------------------------------------


def _models(manifest: Manifest) -> list[dict]:
    return sorted(
        (n for n in manifest["nodes"].values() if n["resource_type"] == "model"), key=lambda n: n["unique_id"]
    )


def _blocking_tests_by_model(manifest: Manifest) -> dict[str, list[dict]]:
    """Generic data tests per model they are attached to, warn-severity tests left out."""
    tests: dict[str, list[dict]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test" or not node.get("test_metadata"):
            continue
        if str((node.get("config") or {}).get("severity", "error")).lower() == "warn":
            continue
        model = node.get("attached_node") or next(iter(node.get("depends_on", {}).get("nodes", [])), None)
        if model:
            tests.setdefault(model, []).append(node)
    return tests


def _primary_key(model: dict) -> list[str] | None:
    meta = (model.get("config") or {}).get("meta") or model.get("meta") or {}
    key = meta.get("primary_key")
    if key is None or key == [] or key == "":
        return None
    return [key] if isinstance(key, str) else list(key)


def _enforced_not_null(model: dict, column: str) -> bool:
    """A `not_null` constraint of an enforced contract: the database refuses the null at build time,
    which blocks like a failing test (and costs no query)."""
    enforced = ((model.get("config") or {}).get("contract") or {}).get("enforced", False)
    constraints = ((model.get("columns") or {}).get(column) or {}).get("constraints") or []
    return bool(enforced) and any(c.get("type") == "not_null" for c in constraints)


def check_grain(manifest: Manifest) -> list[str]:
    """Every model's description contains "one row per"."""
    return [
        f"{m['name']}: description states no grain (no {GRAIN_PHRASE!r}): {m.get('description', '')[:80]!r}"
        for m in _models(manifest)
        if GRAIN_PHRASE not in " ".join((m.get("description") or "").lower().split())
    ]


def check_primary_keys(manifest: Manifest) -> list[str]:
    """Every model declares config.meta.primary_key, and the key is tested unique and not null."""
    tests = _blocking_tests_by_model(manifest)
    problems = []
    for model in _models(manifest):
        name, key = model["name"], _primary_key(model)
        if key is None:
            problems.append(f"{name}: no primary key declared (config.meta.primary_key)")
            continue
        model_tests = tests.get(model["unique_id"], [])
        column_tests = {
            (t["test_metadata"]["name"], (t.get("column_name") or t["test_metadata"]["kwargs"].get("column_name")))
            for t in model_tests
        }
        if len(key) == 1:  # a composite key's test covers nulls itself
            missing_not_null = [
                c for c in key if ("not_null", c) not in column_tests and not _enforced_not_null(model, c)
            ]
            if missing_not_null:
                problems.append(f"{name}: primary key column(s) {missing_not_null} lack a not_null test")
            if ("unique", key[0]) not in column_tests:
                problems.append(f"{name}: primary key column {key[0]!r} lacks a unique test")
        else:
            combinations = [
                sorted(t["test_metadata"]["kwargs"].get("combination_of_columns") or [])
                for t in model_tests
                if t["test_metadata"]["name"] == COMPOSITE_KEY_TEST
            ]
            if sorted(key) not in combinations:
                problems.append(f"{name}: composite primary key {key} lacks a {COMPOSITE_KEY_TEST} test on exactly it")
    return problems


def check_sources_only_in_staging(manifest: Manifest) -> list[str]:
    """Only models under models/staging/ depend on sources."""
    problems = []
    for model in _models(manifest):
        sources = sorted(n for n in model.get("depends_on", {}).get("nodes", []) if n.startswith("source."))
        if sources and not model["original_file_path"].startswith(STAGING_PREFIX):
            problems.append(
                f"{model['name']} ({model['original_file_path']}) reads source(s) {sources}: only staging may"
            )
    return problems


def check_contracts(manifest: Manifest) -> list[str]:
    """BI-facing models have an enforced contract with a data_type for every column."""
    problems = []
    for model in _models(manifest):
        if model.get("schema") not in CONTRACTED_SCHEMAS:
            continue
        if not ((model.get("config") or {}).get("contract") or {}).get("enforced"):
            problems.append(f"{model['name']}: no enforced contract")
        untyped = [c for c, col in (model.get("columns") or {}).items() if not col.get("data_type")]
        if untyped:
            problems.append(f"{model['name']}: columns without data_type: {untyped}")
        if not model.get("columns"):
            problems.append(f"{model['name']}: contract lists no columns")
    return problems


CHECKS: dict[str, Callable[[Manifest], list[str]]] = {
    "grain": check_grain,
    "primary_keys": check_primary_keys,
    "sources_only_in_staging": check_sources_only_in_staging,
    "contracts": check_contracts,
}


# --- the real manifest -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Manifest:
    """`dbt parse` of the project into a temporary target path (no warehouse needed to parse)."""
    tmp = tmp_path_factory.mktemp("dbt_parse")
    env = {
        **os.environ,
        "SEGMENTS_WAREHOUSE_PATH": str(tmp / "w.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "parse",
            "--quiet",
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(tmp / "target"),
            "--log-path",
            str(tmp / "logs"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp / "target" / "manifest.json").read_text())


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_project_follows_convention(manifest, check):
    assert _models(manifest), "the manifest holds no models"
    assert CHECKS[check](manifest) == []


def test_ml_and_identity_write_backs_are_read_through_staging(manifest):
    """The Python write-backs (ml.*, identity.*) each have their stg_<source>__<table> model."""
    models = {m["name"] for m in _models(manifest)}
    for source in manifest["sources"].values():
        if source["source_name"] in ("ml", "identity"):
            assert f"stg_{source['source_name']}__{source['name']}" in models, source["unique_id"]


# --- the checks fail on deliberate defects -----------------------------------------------------


def _model(name: str, path: str, description: str, key, columns: dict, depends: list[str], schema: str) -> dict:
    return {
        "unique_id": f"model.p.{name}",
        "resource_type": "model",
        "name": name,
        "schema": schema,
        "original_file_path": path,
        "description": description,
        "config": {"meta": {"primary_key": key} if key is not None else {}, "contract": {"enforced": True}},
        "columns": {c: {"name": c, "data_type": t} for c, t in columns.items()},
        "depends_on": {"nodes": depends, "macros": []},
    }


def _test(test: str, model: str, column: str | None = None, **kwargs) -> dict:
    kwargs = {**({"column_name": column} if column else {}), **kwargs}
    suffix = column or "_".join(kwargs.get("combination_of_columns", []))
    return {
        "unique_id": f"test.p.{test}_{model}_{suffix}",
        "resource_type": "test",
        "attached_node": f"model.p.{model}",
        "column_name": column,
        "test_metadata": {"name": test, "kwargs": kwargs, "namespace": None},
        "config": {"severity": "ERROR"},
        "depends_on": {"nodes": [f"model.p.{model}"], "macros": []},
    }


def good_manifest() -> Manifest:
    """A staging model on a source, a mart with a one-column key, a contracted mart with a composite key."""
    nodes = [
        _model(
            "stg_ml__assignments",
            "models/staging/ml/stg_ml__assignments.sql",
            "One row per customer and family.",
            "assignment_id",
            {"assignment_id": None},
            ["source.p.ml.assignments"],
            "staging",
        ),
        _model(
            "customers",
            "models/marts/core/customers.sql",
            "The golden record: one row per customer.",
            "customer_id",
            {"customer_id": None},
            [],
            "marts",
        ),
        _model(
            "customer_segments",
            "models/marts/segments/customer_segments.sql",
            "One row per customer per segment family.",
            ["customer_id", "segment_family"],
            {"customer_id": "varchar", "segment_family": "varchar"},
            ["model.p.stg_ml__assignments"],
            "segments",
        ),
        _test("unique", "stg_ml__assignments", "assignment_id"),
        _test("not_null", "stg_ml__assignments", "assignment_id"),
        _test("unique", "customers", "customer_id"),
        _test("not_null", "customers", "customer_id"),
        _test("not_null", "customer_segments", "customer_id"),
        _test("not_null", "customer_segments", "segment_family"),
        _test(COMPOSITE_KEY_TEST, "customer_segments", combination_of_columns=["customer_id", "segment_family"]),
    ]
    return {"nodes": {n["unique_id"]: n for n in nodes}, "sources": {}}


def _node(manifest: Manifest, unique_id: str) -> dict:
    return manifest["nodes"][unique_id]


def _drop_test(manifest: Manifest, test: str, model: str, column: str | None = None) -> None:
    for uid, node in list(manifest["nodes"].items()):
        meta = node.get("test_metadata") or {}
        attached = node.get("attached_node") == f"model.p.{model}"
        if meta.get("name") == test and attached and node.get("column_name") == column:
            del manifest["nodes"][uid]
            return
    raise AssertionError(f"no {test} test on {model}.{column}")


def no_grain(m):
    _node(m, "model.p.customers")["description"] = "The golden record of each person."


def empty_description(m):
    _node(m, "model.p.stg_ml__assignments")["description"] = ""


def no_primary_key(m):
    _node(m, "model.p.customers")["config"]["meta"] = {}


def key_without_unique(m):
    _drop_test(m, "unique", "customers", "customer_id")


def key_without_not_null(m):
    _drop_test(m, "not_null", "stg_ml__assignments", "assignment_id")


def key_tests_on_another_column(m):
    _node(m, "model.p.customers")["config"]["meta"]["primary_key"] = "customer_key"


def key_unique_test_only_warns(m):
    uid = next(u for u in m["nodes"] if u.startswith("test.p.unique_customers"))
    m["nodes"][uid]["config"]["severity"] = "warn"


def composite_key_without_combination_test(m):
    _drop_test(m, COMPOSITE_KEY_TEST, "customer_segments")


def composite_key_tested_on_fewer_columns(m):
    uid = next(u for u in m["nodes"] if u.startswith(f"test.p.{COMPOSITE_KEY_TEST}"))
    m["nodes"][uid]["test_metadata"]["kwargs"]["combination_of_columns"] = ["customer_id"]


def mart_reads_a_source(m):
    _node(m, "model.p.customers")["depends_on"]["nodes"].append("source.p.crm.customers")


def mart_has_a_source_depends_on_hint(m):
    # `-- depends_on: {{ source('ml', 'assignments') }}` in a mart: the manifest records it like a read
    _node(m, "model.p.customer_segments")["depends_on"]["nodes"].append("source.p.ml.assignments")


def staging_folder_lookalike_reads_a_source(m):
    node = _node(m, "model.p.stg_ml__assignments")
    node["original_file_path"] = "models/intermediate/staging_ml/stg_ml__assignments.sql"


def not_null_constraint_without_enforced_contract(m):
    """A not_null constraint replaces the test only where a contract enforces it."""
    _drop_test(m, "not_null", "customers", "customer_id")
    customers = _node(m, "model.p.customers")
    customers["columns"]["customer_id"]["constraints"] = [{"type": "not_null"}]
    customers["config"]["contract"] = {"enforced": False}


def test_an_enforced_not_null_constraint_replaces_the_not_null_test():
    manifest = copy.deepcopy(good_manifest())
    _drop_test(manifest, "not_null", "customers", "customer_id")
    assert check_primary_keys(manifest)  # the test is gone: the key column is unguarded
    _node(manifest, "model.p.customers")["columns"]["customer_id"]["constraints"] = [{"type": "not_null"}]
    assert check_primary_keys(manifest) == []


def segments_model_without_contract(m):
    _node(m, "model.p.customer_segments")["config"]["contract"] = {"enforced": False}


def segments_column_without_data_type(m):
    _node(m, "model.p.customer_segments")["columns"]["segment_family"]["data_type"] = None


DEFECTS = [
    ("grain", no_grain, "customers: description states no grain"),
    ("grain", empty_description, "stg_ml__assignments: description states no grain"),
    ("primary_keys", no_primary_key, "customers: no primary key declared"),
    ("primary_keys", key_without_unique, "customers: primary key column 'customer_id' lacks a unique test"),
    ("primary_keys", key_without_not_null, "stg_ml__assignments: primary key column(s) ['assignment_id'] lack"),
    ("primary_keys", key_tests_on_another_column, "customers: primary key column(s) ['customer_key'] lack"),
    ("primary_keys", key_unique_test_only_warns, "customers: primary key column 'customer_id' lacks a unique test"),
    ("primary_keys", composite_key_without_combination_test, "customer_segments: composite primary key"),
    ("primary_keys", composite_key_tested_on_fewer_columns, "customer_segments: composite primary key"),
    ("primary_keys", not_null_constraint_without_enforced_contract, "customers: primary key column(s) ['customer_id"),
    ("sources_only_in_staging", mart_reads_a_source, "customers (models/marts/core/customers.sql) reads source(s)"),
    ("sources_only_in_staging", mart_has_a_source_depends_on_hint, "customer_segments (models/marts/segments/"),
    ("sources_only_in_staging", staging_folder_lookalike_reads_a_source, "stg_ml__assignments (models/intermediate/"),
    ("contracts", segments_model_without_contract, "customer_segments: no enforced contract"),
    ("contracts", segments_column_without_data_type, "customer_segments: columns without data_type: ['segment_fa"),
]


def test_good_manifest_passes_every_check():
    manifest = good_manifest()
    for name, check in CHECKS.items():
        assert check(manifest) == [], name


@pytest.mark.parametrize(("check", "defect", "message"), DEFECTS, ids=[d[1].__name__ for d in DEFECTS])
def test_check_fails_on_defect(check, defect, message):
    manifest = copy.deepcopy(good_manifest())
    defect(manifest)
    problems = CHECKS[check](manifest)
    assert any(p.startswith(message) for p in problems), problems
    # the defect trips only the check it is aimed at
    for other, other_check in CHECKS.items():
        if other != check:
            assert other_check(manifest) == [], (other, other_check(manifest))
