"""Table definitions in one place: created where missing, migrated, idempotent, in an attached catalog."""

import duckdb
import pytest

from warehouse.tables import TABLES, ensure_tables


def columns(con, table: str, catalog: str | None = None) -> list[str]:
    schema, name = table.split(".")
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "and (? is null or table_catalog = ?) order by ordinal_position",
        [schema, name, catalog, catalog],
    ).fetchall()
    return [r[0] for r in rows]


def test_every_table_is_created_once_and_again_changes_nothing():
    con = duckdb.connect()
    ensure_tables(con, *TABLES)
    ensure_tables(con, *TABLES)  # idempotent
    for table in TABLES:
        assert columns(con, table), table
    con.execute("insert into ml.segment_scoring_runs values ('r1', now()::timestamp, '1', '2.0.0', '1.0.0', 3)")
    ensure_tables(con, "ml.segment_scoring_runs")
    assert con.execute("select count(*) from ml.segment_scoring_runs").fetchone()[0] == 1


def test_an_old_ledger_gains_the_later_columns():
    con = duckdb.connect()
    con.execute("create schema audit")
    con.execute("create table audit.ingest_ledger (source_table varchar, source_file varchar, file_sha256 varchar)")
    ensure_tables(con, "audit.ingest_ledger")
    assert columns(con, "audit.ingest_ledger")[-5:] == [
        "rows_already_loaded",
        "file_mtime_ns",
        "file_ctime_ns",
        "rows_updated",
        "rows_deleted",
    ]


def test_tables_go_into_an_attached_catalog(tmp_path):
    con = duckdb.connect()
    con.execute(f"attach '{tmp_path / 'w.duckdb'}' as wh")
    ensure_tables(con, "identity.review_queue", catalog="wh")
    assert columns(con, "identity.review_queue", "wh")[:3] == ["run_id", "created_at", "kind"]
    assert not columns(con, "identity.review_queue", "memory")


def test_a_catalog_name_is_validated_before_it_reaches_sql():
    with pytest.raises(ValueError, match="not a catalog name"):
        ensure_tables(duckdb.connect(), "ml.segment_profiles", catalog="wh; drop table x")
    with pytest.raises(KeyError):
        ensure_tables(duckdb.connect(), "ml.not_a_table")
