"""The warehouse's run records decide whether a run has work although no landing file is new: files
loaded by a run that never published (killed after its ingest) are completed by the next run."""

from __future__ import annotations

import duckdb
import pytest

from warehouse.connections import connect
from warehouse.run_records import (
    RUNS_TABLE,
    mark_reaped,
    open_runs,
    record_end,
    record_ingest,
    record_published,
    record_start,
    unpublished_loads,
)
from warehouse.tables import ensure_tables


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        ensure_tables(con, "audit.ingest_ledger")
        yield con


def _loaded(con: duckdb.DuckDBPyConnection, run_id: str | None, name: str, status: str = "loaded") -> None:
    con.execute(
        "insert into audit.ingest_ledger (source_table, source_file, file_sha256, status, loaded_at, run_id) "
        "values ('erp.orders', ?, ?, ?, current_timestamp::timestamp, ?)",
        [name, name, status, run_id],
    )


def test_a_run_killed_after_its_ingest_leaves_work_for_the_next(con):
    assert record_start(con, "r1") == 1
    _loaded(con, "r1", "a.csv")
    record_ingest(con, "r1", 1)
    record_published(con, "r1")
    record_end(con, "r1", "succeeded")
    assert not unpublished_loads(con)

    assert record_start(con, "r2") == 2
    _loaded(con, "r2", "b.csv")
    _loaded(con, "r2", "c.csv")
    record_ingest(con, "r2", 2)  # ... killed here: never published
    assert record_start(con, "r3") == 3
    pending = unpublished_loads(con, excluding="r3")
    assert (pending.files, pending.runs) == (2, ("r2",))
    assert "never published" in pending.describe()

    record_published(con, "r3")  # the recovery run published: r2's files are covered
    assert not unpublished_loads(con)
    assert mark_reaped(con, ["r2"], "died") == 1
    assert con.execute(f"select outcome from {RUNS_TABLE} where run_id = 'r2'").fetchone() == ("reaped",)
    assert mark_reaped(con, ["r1"], "died") == 0  # an ended run keeps its outcome


def test_start_is_idempotent_and_failed_files_are_not_work(con):
    assert record_start(con, "r1") == 1
    assert record_start(con, "r1") == 1  # a retried step
    _loaded(con, "r1", "broken.csv", status="failed")
    assert not unpublished_loads(con)


def test_a_warehouse_older_than_the_run_records_does_its_downstream_work_once(con):
    _loaded(con, None, "old.csv")  # loaded before run records existed
    assert unpublished_loads(con).files == 1
    record_start(con, "r1")
    record_published(con, "r1")
    assert not unpublished_loads(con)


def test_timestamps_are_utc_whatever_the_host_tz(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        with connect(tmp_path / "tz.duckdb") as con:
            record_start(con, "r1")
            lag = con.execute(
                f"select abs(epoch(started_at) - epoch(now()::timestamptz)) from {RUNS_TABLE}"
            ).fetchone()[0]
            assert con.execute("select current_setting('TimeZone')").fetchone()[0] == "UTC"
    finally:
        monkeypatch.undo()
        time.tzset()
    assert lag < 60  # a Tokyo-local timestamp would be 9 h off


def test_open_runs_are_those_without_an_outcome(con):
    for run_id in ("r1", "r2", "r3"):
        record_start(con, run_id)
    record_end(con, "r1", "succeeded")
    mark_reaped(con, ["r2"], "died")
    assert open_runs(con) == ["r3"]
