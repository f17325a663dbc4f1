"""The BI serving copy: complete versions, an atomic `current`, retention, no PII, honest manifests."""

from __future__ import annotations

import hashlib
import json
import os

import duckdb
import pytest

from tests.warehouse.serving_fixtures import make_warehouse, rescore
from warehouse.feature_registry import load_registry
from warehouse.serving import (
    CUSTOMER_COLUMNS,
    DUCKDB_CONFIG,
    PII_COLUMN,
    ServingError,
    _prune,
    current_version,
    list_versions,
    publish,
    reporting_feature_columns,
    validate_identifier,
)

PII = (
    "first_name",
    "last_name",
    "email",
    "email_source",
    "phone",
    "street",
    "city",
    "postal_code",
    "birth_date",
    "source_record_ids",
)


@pytest.fixture
def warehouse(tmp_path):
    return make_warehouse(tmp_path / "warehouse.duckdb", run_id="run-0001")


@pytest.fixture
def serving(tmp_path):
    return tmp_path / "serving"


def read(path, sql):
    """What a BI reader sees: the file opened read-only."""
    with duckdb.connect(str(path), read_only=True, config=DUCKDB_CONFIG) as con:
        return con.execute(sql).fetchall()


def query(sql):
    """A query over files (Parquet, attached databases) in a scratch in-memory database."""
    with duckdb.connect(config=DUCKDB_CONFIG) as con:
        return con.execute(sql).fetchall()


def test_publish_twice_switches_current_and_the_stable_file(warehouse, serving):
    first = publish(warehouse, serving, "run-0001")
    assert current_version(serving) == first.version
    assert read(serving / "bi.duckdb", "select run_id from serving.publication") == [("run-0001",)]
    rescore(warehouse, "run-0002", drop=5)
    second = publish(warehouse, serving, "run-0002")
    assert second.version > first.version  # names sort by publication time
    assert current_version(serving) == second.version
    assert os.path.realpath(serving / "current") == str(second.version_dir)
    assert list_versions(serving) == [first.version, second.version]
    assert read(serving / "bi.duckdb", "select run_id, version from serving.publication") == [
        ("run-0002", second.version)
    ]
    assert read(serving / "bi.duckdb", "select count(*) from segments.customer_segments") == [(2 * 45,)]
    # the stable file is the current version's file, not a copy that could differ
    assert os.path.samefile(serving / "bi.duckdb", second.version_dir / "bi.duckdb")
    # nothing half-done is left beside the versions
    assert sorted(p.name for p in serving.iterdir() if not p.name.startswith(".publish")) == [
        "bi.duckdb",
        "current",
        "versions",
    ]


def test_old_versions_are_pruned_and_current_never(warehouse, serving):
    results = [publish(warehouse, serving, f"run-{i:04d}", keep=2) for i in range(5)]
    assert list_versions(serving) == [r.version for r in results[-2:]]
    assert sum(len(r.pruned) for r in results) == 3
    assert not any(r.version_dir.exists() for r in results[:3])
    # even when `current` points at the oldest version, pruning keeps it
    oldest = list_versions(serving)[0]
    os.replace(serving / "current", serving / "current.bak")
    os.symlink(f"versions/{oldest}", serving / "current")
    assert _prune(serving, keep=1) == ()
    assert list_versions(serving) == [oldest, results[-1].version]


def test_a_reader_with_the_old_file_open_keeps_reading_after_swap_and_prune(warehouse, serving):
    publish(warehouse, serving, "run-0001", keep=1)
    con = duckdb.connect(str(serving / "bi.duckdb"), read_only=True, config=DUCKDB_CONFIG)
    try:
        for i in range(2, 5):
            rescore(warehouse, f"run-{i:04d}")
            publish(warehouse, serving, f"run-{i:04d}", keep=1)
        assert len(list_versions(serving)) == 1
        # the old inode stays readable: no missing-file error, and still the old, consistent version
        assert con.execute("select run_id from serving.publication").fetchall() == [("run-0001",)]
        assert con.execute("select count(*) from segments.customer_segments").fetchall() == [(100,)]
    finally:
        con.close()
    assert read(serving / "bi.duckdb", "select run_id from serving.publication") == [("run-0004",)]


def test_customers_and_features_carry_no_pii(warehouse, serving):
    result = publish(warehouse, serving, "run-0001")
    db = serving / "bi.duckdb"
    columns = read(db, "select table_schema, table_name, column_name from information_schema.columns")
    assert columns and not [c for c in columns if c[2] in PII or PII_COLUMN.match(c[2])]
    customers = [c[2] for c in columns if c[:2] == ("reporting", "customers")]
    assert customers == list(CUSTOMER_COLUMNS)
    features = [c[2] for c in columns if c[:2] == ("reporting", "customer_features")]
    # registry: country is a quasi-identifier (reporting only) and stays out of the features
    assert features == [
        "customer_id",
        "as_of_date",
        "recency_days",
        "frequency",
        "monetary_base",
        "has_profiling_consent",
    ]
    # the Parquet copies have the same columns
    parquet = result.version_dir / "parquet" / "reporting.customers.parquet"
    assert [r[0] for r in query(f"describe select * from '{parquet}'")] == list(CUSTOMER_COLUMNS)


def test_reporting_features_follow_the_registry():
    registry = load_registry()
    published = reporting_feature_columns(registry)
    assert "customer_id" in published and "has_profiling_consent" in published and "recency_days" in published
    assert "country" not in published
    assert all(
        registry[c].pii_class in ("none", "pseudonymous_id") and "reporting" in registry[c].allowed_purposes
        for c in published
    )


def test_every_segments_relation_is_published_with_honest_manifest(warehouse, serving):
    result = publish(warehouse, serving, "run-0001")
    manifest = json.loads((result.version_dir / "manifest.json").read_text())
    assert manifest["run_id"] == "run-0001" and manifest["version"] == result.version
    expected = {
        "segments.customer_segments": 100,
        "segments.segment_profiles": 6,
        "segments.segment_definitions": 1,
        "segments.segment_sizes": 6,
        "reporting.customers": 50,
        "reporting.customer_features": 50,
    }
    assert {t: m["rows"] for t, m in manifest["tables"].items()} == expected == result.row_counts
    db = result.version_dir / "bi.duckdb"
    assert (
        dict(read(db, "select table_schema || '.' || table_name, row_count from serving.published_tables")) == expected
    )
    for table, entry in manifest["tables"].items():
        assert read(db, f"select count(*) from {table}") == [(entry["rows"],)]
        parquet = result.version_dir / entry["parquet"]
        assert query(f"select count(*) from '{parquet}'") == [(entry["rows"],)]
        assert hashlib.sha256(parquet.read_bytes()).hexdigest() == entry["sha256"]
    assert not (result.version_dir / "bi.duckdb.wal").exists()
    # readable by DuckDB 1.0+ clients (BI tools lag the pipeline's DuckDB)
    assert query(
        f"attach '{db}' as s (read_only); select tags['storage_version'] from duckdb_databases() "
        "where database_name = 's'"
    ) == [("v1.0.0+",)]


@pytest.mark.parametrize("bad", ["Segments", "bad-name", "x; drop table y", "1abc", "", "naïve"])
def test_invalid_identifiers_are_refused(bad):
    with pytest.raises(ServingError):
        validate_identifier(bad)


def test_a_table_with_an_unsafe_name_stops_the_publication(warehouse, serving):
    first = publish(warehouse, serving, "run-0001")
    with duckdb.connect(str(warehouse)) as con:
        con.execute('create table segments."Bad Name; drop" as select 1 as x')
    with pytest.raises(ServingError, match="refusing identifier"):
        publish(warehouse, serving, "run-0002")
    # the previous version stays current and nothing half-written is left
    assert current_version(serving) == first.version
    assert list_versions(serving) == [first.version]
    assert not [p for p in (serving / "versions").iterdir() if p.name.startswith(".")]


def test_a_pii_column_in_the_segments_schema_stops_the_publication(warehouse, serving):
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table segments.leak as select customer_id, email from marts.customers")
    with pytest.raises(ServingError, match="looks like PII"):
        publish(warehouse, serving, "run-0001")
    assert current_version(serving) is None and not (serving / "bi.duckdb").exists()


def test_missing_marts_are_an_error(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema segments; create table segments.customer_segments as select 'c1' as customer_id")
    with pytest.raises(ServingError, match="marts.customers"):
        publish(path, tmp_path / "serving", "run-0001")


def test_keep_must_be_positive(warehouse, serving):
    with pytest.raises(ServingError):
        publish(warehouse, serving, "run-0001", keep=0)


def add_activation(warehouse, leak: str = "") -> None:
    """The activation schema as dbt builds it: the crosswalk and the outbox with destination keys."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema activation")
        con.execute(
            "create table activation.customer_key_crosswalk as select customer_id, "
            "'C' || customer_id as crm_customer_id, 'A' || customer_id as erp_account_id, "
            f"['C' || customer_id] as crm_customer_ids{leak} from marts.customers"
        )
        con.execute(
            "create table activation.action_outbox as select 'a1' as action_id, customer_id, "
            "'C' || customer_id as crm_customer_id, 'crm' as destination_system from marts.customers limit 3"
        )


def test_source_keys_are_published_apart_owner_only_and_never_in_the_bi_copy(warehouse, serving):
    add_activation(warehouse)
    result = publish(warehouse, serving, "run-0001")
    restricted = serving / "restricted_activation.duckdb"
    assert restricted.exists() and (restricted.stat().st_mode & 0o777) == 0o600
    assert (result.version_dir / "restricted_activation.duckdb").samefile(restricted)
    rows = read(restricted, "select count(*) from activation.customer_key_crosswalk")
    assert rows == [(50,)]
    assert read(restricted, "select crm_customer_id from activation.action_outbox order by 1 limit 1")[0][0].startswith(
        "C"
    )
    bi_schemas = {s for (s,) in read(serving / "bi.duckdb", "select distinct schema_name from duckdb_tables()")}
    assert "activation" not in bi_schemas
    assert not any("activation" in t.parquet for t in result.tables)


def test_a_pii_column_in_the_activation_schema_stops_the_publication(warehouse, serving):
    add_activation(warehouse, leak=", 'x@example.org' as email")
    with pytest.raises(ServingError, match="activation.customer_key_crosswalk.email: looks like PII"):
        publish(warehouse, serving, "run-0001")
    assert not (serving / "restricted_activation.duckdb").exists()
