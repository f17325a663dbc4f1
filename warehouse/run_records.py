"""The warehouse's own record of pipeline runs (`audit.pipeline_runs`), and what it says is left to do.

Whether a run has work to do must not depend on the orchestrator's event log: a run killed after its
ingest committed leaves raw rows that no publication has covered yet, and only the warehouse knows
that for sure. So every run writes, in the warehouse it changes:

- at the start of its ingest, one row (`record_start`), numbered in start order (`run_seq`: runs on a
  home never overlap, one run holds the home at a time);
- when its ingest ended, how many landing files it loaded (`record_ingest`);
- when its publication swapped in the BI copy, the time (`record_published`);
- when it ended, its outcome (`record_end`, by the command line; `mark_reaped` for a run whose process
  died, by the next run).

`unpublished_loads()` compares the ingest ledger with those rows: files loaded by a run that started
after the last publication (or by runs older than this table, when nothing was ever published under
it) have not reached BI, and the next run must do the downstream work even when no landing file is
new. All timestamps are UTC (every connection runs in UTC, `warehouse.connections`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from warehouse.tables import ensure_tables

RUNS_TABLE = "audit.pipeline_runs"
LEDGER_TABLE = "audit.ingest_ledger"


@dataclass(frozen=True)
class UnpublishedLoads:
    """Landing files loaded by runs whose work has not been published yet."""

    files: int
    runs: tuple[str, ...]  # their run ids, oldest first (legacy rows without a run record: "unknown run")

    def __bool__(self) -> bool:
        return self.files > 0

    def describe(self) -> str:
        runs = ", ".join(r[:8] for r in self.runs)
        return f"{self.files} landing file(s) loaded by earlier run(s) {runs} were never published"


def unpublished_files_sql(table_param: str = "?") -> str:
    """SQL: the `file_sha256` of every file of one raw table (`source_table = <table_param>`) loaded by a run
    that started after the last publication: the current run and any earlier run that died before it
    published. Their rows are what the current run must validate and carry to BI."""
    return f"""select l.file_sha256 from {LEDGER_TABLE} l join {RUNS_TABLE} r on r.run_id = l.run_id
               where l.status = 'loaded' and l.source_table = {table_param}
                 and r.run_seq > (select coalesce(max(run_seq), 0) from {RUNS_TABLE} where published_at is not null)"""


def record_start(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Record that `run_id` started (idempotent: a retried step keeps the first row); returns its run_seq."""
    ensure_tables(con, RUNS_TABLE, LEDGER_TABLE)
    con.execute(
        f"""insert into {RUNS_TABLE} (run_id, run_seq, started_at)
            select ?, coalesce(max(run_seq), 0) + 1, current_timestamp::timestamp from {RUNS_TABLE}
            on conflict do nothing""",
        [run_id],
    )
    return con.execute(f"select run_seq from {RUNS_TABLE} where run_id = ?", [run_id]).fetchone()[0]


def record_ingest(con: duckdb.DuckDBPyConnection, run_id: str, files_loaded: int) -> None:
    con.execute(f"update {RUNS_TABLE} set files_loaded = ? where run_id = ?", [files_loaded, run_id])


def record_published(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """The run's publication is visible to BI: everything loaded up to this run is covered.

    A run that did not start through the ingest (e.g. a job of the UI that publishes only) gets its row
    here, so the publication counts."""
    record_start(con, run_id)
    con.execute(f"update {RUNS_TABLE} set published_at = current_timestamp::timestamp where run_id = ?", [run_id])


def record_end(con: duckdb.DuckDBPyConnection, run_id: str, outcome: str, message: str | None = None) -> None:
    """`outcome`: succeeded | failed. A run that never reached the ingest has no row and gets none."""
    con.execute(
        f"update {RUNS_TABLE} set outcome = ?, ended_at = current_timestamp::timestamp, message = ? where run_id = ?",
        [outcome, message, run_id],
    )


def mark_reaped(con: duckdb.DuckDBPyConnection, run_ids: Iterable[str], message: str) -> int:
    """Runs whose process died without ending them: outcome `reaped`. Returns how many rows changed."""
    ids = list(run_ids)
    if not ids:
        return 0
    ensure_tables(con, RUNS_TABLE)
    (changed,) = con.execute(
        f"""update {RUNS_TABLE} set outcome = 'reaped', ended_at = current_timestamp::timestamp, message = ?
            where run_id in (select unnest(?::varchar[])) and outcome is null""",
        [message, ids],
    ).fetchone()
    return changed


def open_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Run ids whose record has no outcome yet (running, dead and not reaped yet, or launched from the UI,
    which does not end its record itself)."""
    ensure_tables(con, RUNS_TABLE)
    rows = con.execute(f"select run_id from {RUNS_TABLE} where outcome is null order by run_seq").fetchall()
    return [r[0] for r in rows]


def unpublished_loads(con: duckdb.DuckDBPyConnection, *, excluding: str | None = None) -> UnpublishedLoads:
    """Files of the ledger loaded by runs (other than `excluding`, the current one) that started after the
    last published run. Ledger rows of runs older than the run records count only while no run was ever
    published under them: a warehouse created before this table does its downstream work once more."""
    ensure_tables(con, RUNS_TABLE, LEDGER_TABLE)
    rows = con.execute(
        f"""with last_publication as (
                select max(run_seq) as seq from {RUNS_TABLE} where published_at is not null
            )
            select coalesce(l.run_id, 'unknown run') as run_id, min(r.run_seq) as seq, count(*) as files
            from {LEDGER_TABLE} l
            left join {RUNS_TABLE} r on r.run_id = l.run_id
            cross join last_publication p
            where l.status = 'loaded'
              and (?::varchar is null or l.run_id is distinct from ?)
              and (r.run_seq > coalesce(p.seq, 0) or (r.run_seq is null and p.seq is null))
            group by all
            order by seq nulls first, run_id""",
        [excluding, excluding],
    ).fetchall()
    return UnpublishedLoads(files=sum(r[2] for r in rows), runs=tuple(r[0] for r in rows))


__all__ = [
    "RUNS_TABLE",
    "UnpublishedLoads",
    "mark_reaped",
    "open_runs",
    "record_end",
    "record_ingest",
    "record_published",
    "record_start",
    "unpublished_files_sql",
    "unpublished_loads",
]
