"""The fast part of the fault suite (runs in `make test`, a few seconds each): the harness's comparison on
small inputs, a second run refused while a first one holds the home, and the ingest of a growing file."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import duckdb

from tests.faults import harness as h
from tests.faults.test_concurrency import refusal_problems

# --- the comparison --------------------------------------------------------------------------------------


def _home_fingerprint() -> dict:
    state = {"marts.customers": {"rows": 2, "digest": "a"}, "audit.quarantine": {"rows": 1, "digest": "q"}}
    scoring = {"runs": 2, "distinct": ["r1", "r2"], "latest": "r2", "latest_rows": 1, "rows_per_run": [1, 1]}
    ledger = {"loaded": [["erp.orders", "erp/orders/part-0000.csv", "sha0", 3, 2, 1, 0]], "statuses": {"loaded": 1}}
    return {
        "warehouse": {
            "state": state,
            "logs": {"ml.segment_scoring_runs": scoring},
            "ledger": ledger,
            "pipeline_runs": {"outcomes": {"succeeded": 2}, "last": "succeeded"},
        },
        "serving": {},
        "mlflow": {
            "runs": {"FINISHED": 2},
            "versions": {"customer_segmentation/1": {"run_status": "FINISHED", "k": "8"}},
            "aliases": {"customer_segmentation@champion": "1"},
        },
        "dagster": {
            "runs": [["build_segments_job", "SUCCESS", "r1"]],
            "checks": {"a / b": "passed"},
            "claimed_slots": 0,
        },
    }


def test_compare_accepts_logged_retries_and_rejects_changed_state():
    clean = _home_fingerprint()
    assert h.compare(clean, copy.deepcopy(clean)) == []

    retried = copy.deepcopy(clean)
    scoring = retried["warehouse"]["logs"]["ml.segment_scoring_runs"]
    scoring.update(runs=3, rows_per_run=[1, 1, 1])  # the same content logged again by a recovery
    retried["warehouse"]["ledger"]["statuses"]["failed"] = 1  # a failed attempt stays in the ledger
    retried["mlflow"]["runs"]["FAILED"] = 1  # a killed training, marked failed
    retried["mlflow"]["versions"]["customer_segmentation/2"] = {"run_status": "FAILED", "k": "8"}
    retried["dagster"]["runs"].insert(0, ["build_segments_job", "FAILURE", "dead"])
    retried["warehouse"]["pipeline_runs"]["outcomes"]["reaped"] = 1
    assert h.compare(clean, retried) == []

    def broken(change) -> list[str]:
        fp = copy.deepcopy(clean)
        change(fp)
        return h.compare(clean, fp)

    assert broken(lambda fp: fp["warehouse"]["state"]["audit.quarantine"].update(rows=2, digest="x"))
    assert broken(lambda fp: fp["warehouse"]["logs"]["ml.segment_scoring_runs"].update(distinct=["r1", "r2", "r3"]))
    assert broken(lambda fp: fp["warehouse"]["logs"]["ml.segment_scoring_runs"].update(latest="r1"))
    assert broken(lambda fp: fp["warehouse"]["ledger"]["loaded"].append(fp["warehouse"]["ledger"]["loaded"][0]))
    assert broken(lambda fp: fp["mlflow"]["aliases"].update({"customer_segmentation@champion": "2"}))
    assert broken(lambda fp: fp["mlflow"]["runs"].update(RUNNING=1))
    assert broken(lambda fp: fp["dagster"]["runs"].append(["build_segments_job", "STARTED", "dead"]))
    assert broken(lambda fp: fp["dagster"].update(claimed_slots=1))
    assert broken(lambda fp: fp["dagster"]["checks"].update({"a / b": "error"}))
    assert broken(lambda fp: fp["warehouse"]["pipeline_runs"].update(last="failed"))


def test_fingerprint_of_a_small_warehouse(tmp_path):
    """fingerprint() reads state, per-run logs and the ledger of a warehouse file (no MLflow, no Dagster)."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema ml; create schema audit; create schema marts")
    con.execute("create table marts.customers (customer_id varchar, _loaded_at timestamp)")
    con.execute("insert into marts.customers values ('c1', now()), ('c2', now())")
    con.execute("create table ml.segment_scoring_runs (dagster_run_id varchar, scored_at timestamp, customers int)")
    con.execute("insert into ml.segment_scoring_runs values ('r1', now(), 2), ('r2', now() + interval 1 hour, 2)")
    con.execute(
        "create table audit.ingest_ledger (source_table varchar, source_file varchar, file_sha256 varchar, "
        "rows_read int, rows_loaded int, rows_quarantined int, rows_already_loaded int, status varchar)"
    )
    con.execute("insert into audit.ingest_ledger values ('erp.orders', 'f.csv', 's', 1, 1, 0, 0, 'loaded')")
    con.close()
    fp = h.fingerprint(tmp_path)
    assert fp["warehouse"]["state"]["marts.customers"]["rows"] == 2
    assert fp["warehouse"]["state"]["marts.customers"]["columns"] == ["customer_id"]
    log = fp["warehouse"]["logs"]["ml.segment_scoring_runs"]
    assert (log["runs"], len(log["distinct"])) == (2, 1)  # two runs, the same content
    assert fp["warehouse"]["ledger"]["loaded"] == [["erp.orders", "f.csv", "s", 1, 1, 0, 0]]
    assert h.compare(fp, h.fingerprint(tmp_path)) == []


# --- a second run on the same home --------------------------------------------------------------------------


def test_second_run_refused_while_a_run_holds_the_home(tmp_path):
    """A real `segments run` on a tiny demo holds the home; a second one exits 3 at once, naming its pid."""
    from demo.generator import generate

    home = tmp_path / "home"
    generate(home / "demo", customers=60, seed=42)
    with h.Cli(h.run_args(home), home=home) as holder:
        # `run <id> (definitions loaded ...)`: the run is about to execute; it holds the home by now
        started = holder.wait_line(lambda text: text.startswith("run ") and "definitions loaded" in text, timeout=120)
        assert started is not None and holder.popen.poll() is None, holder.wait(timeout=5, stall=5).tail()
        second = h.segments(h.run_args(home), home=home, timeout=20, stall=20)
        still_running = holder.popen.poll() is None
        holder.kill()
    problems = refusal_problems(second, holder.pid, within=15)
    assert still_running, "the holder finished before the second run was judged: the test proves nothing"
    assert not problems, "\n".join(problems) + "\n" + second.tail(10)


# --- a file still being written -------------------------------------------------------------------------


def _fx_csv(days: int) -> bytes:
    rows = ["rate_date,currency,rate_to_base"]
    rows += [f"2024-{1 + d // 28:02d}-{1 + d % 28:02d},USD,{0.9 + d / 10000:.6f}" for d in range(days)]
    return ("\n".join(rows) + "\n").encode()


def _loaded(con) -> dict[str, int]:
    return dict(
        con.execute(
            "select source_file, count(*) from audit.ingest_ledger where status = 'loaded' group by 1"
        ).fetchall()
    )


def test_growing_file_is_loaded_once_settled(tmp_path, monkeypatch):
    """The ingest leaves a file alone while it grows (mtime younger than SEGMENTS_LANDING_SETTLE_SECONDS) and
    ignores temporary names (*.part, *.tmp); once settled, or with a `<name>.done` marker, the file loads
    exactly once with every row - nothing quarantined."""
    from warehouse.ingest import ingest_landing

    # a run that starts while the copy pauses: no wait inside this ingest (a writer pausing longer than the
    # settle interval is the case `.done` markers and write-then-rename are for)
    patient = {"settle_seconds": 2, "max_wait_seconds": 0}
    landing = tmp_path / "landing"
    folder = landing / "erp" / "fx_rates"
    folder.mkdir(parents=True)
    growing, marked = folder / "part-0000.csv", folder / "part-0001.csv"
    data, other = _fx_csv(300), _fx_csv(300).replace(b",USD,", b",GBP,")
    growing.write_bytes(data[: len(data) // 2])  # cut inside a row, as a copy in progress
    (folder / "part-0001.csv.part").write_bytes(other)
    (folder / "part-0002.csv.tmp").write_bytes(other)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        ingest_landing(con, landing, run_id="grow-1", **patient)
        assert _loaded(con) == {}, "a file younger than the settle time (or a temporary name) was loaded"
        with growing.open("ab") as fh:
            fh.write(data[len(data) // 2 :])
        ingest_landing(con, landing, run_id="grow-2", **patient)
        assert _loaded(con) == {}, "a file still changing was loaded"
        settled = time.time() - 10
        os.utime(growing, (settled, settled))  # the inode change time is now: the ingest still waits 2 s for it
        (folder / "part-0001.csv.part").rename(marked)  # fresh mtime, but marked done
        Path(f"{marked}.done").touch()
        ingest_landing(con, landing, run_id="grow-3", settle_seconds=2)
        ingest_landing(con, landing, run_id="grow-4", settle_seconds=2)
        assert _loaded(con) == {"erp/fx_rates/part-0000.csv": 1, "erp/fx_rates/part-0001.csv": 1}
        assert con.execute("select count(*), count(distinct currency) from erp.fx_rates").fetchone() == (600, 2)
        assert con.execute("select count(*) from audit.quarantine").fetchone()[0] == 0
    finally:
        con.close()
