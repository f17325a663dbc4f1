"""Only complete files are read: a landing file still being written, or changed while it is read, is left
for a later run; temporary names are never read; a `.done` marker skips the wait; a loaded file that
changes is an error, not a silent reload."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path

import pytest

import warehouse.ingest as ingest
from warehouse.ingest import ingest_landing
from warehouse.reconcile import ledger_discrepancies

# amount last: a file cut mid-line ends in a valid but wrong amount (13.8 for 13.81), as in the issue
PAYMENTS_HEADER = "payment_id,order_id,paid_at,currency,method,amount\n"
Y1 = "Y1,O1,2024-01-02T10:05:00,EUR,card,35.80\n"
Y2 = "Y2,O1,2024-01-02T10:06:00,EUR,card,13.81\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def age(path: Path, seconds: float) -> None:
    """Set the file's mtime `seconds` in the past (its ctime becomes now: utime changes the inode)."""
    past = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(past, past))


@pytest.fixture
def landing(tmp_path, con) -> Path:
    """A landing folder whose rate, account and order are loaded: payments of order O1 can be loaded."""
    folder = tmp_path / "landing"
    write(folder / "erp/fx_rates/fx.csv", "rate_date,currency,rate_to_base\n2024-01-01,EUR,1\n")
    write(folder / "erp/accounts/a.csv", "erp_account_id,created_at\nA1,2023-01-01T00:00:00\n")
    write(
        folder / "erp/orders/o.csv",
        "order_id,erp_account_id,ordered_at,channel,currency,status\nO1,A1,2024-01-02T10:00:00,web,EUR,completed\n",
    )
    assert {f.status for f in ingest_landing(con, folder, settle_seconds=0).files} == {"loaded"}
    return folder


def payments(con) -> list[tuple]:
    return con.execute("select payment_id, amount, _source_file from erp.payments order by 1").fetchall()


def ledger(con, like: str = "erp/payments/%") -> list[tuple]:
    return con.execute(
        "select source_file, status, rows_read from audit.ingest_ledger where source_file like ? order by loaded_at",
        [like],
    ).fetchall()


def quarantined(con) -> int:
    return con.execute("select count(*) from audit.quarantine").fetchone()[0]


def result_for(report, rel: str):
    (result,) = [f for f in report.files if f.source_file == rel]
    return result


def test_a_growing_file_waits_and_is_loaded_complete_once_settled(con, landing):
    path = write(landing / "erp/payments/p.csv", PAYMENTS_HEADER + Y1 + Y2[:-2])  # cut: "...,13.8"
    started = time.monotonic()
    report = ingest_landing(con, landing, settle_seconds=1, max_wait_seconds=0.2)
    # it would need about 1 s to settle, more than the 0.2 s allowed: no pointless wait at all
    assert time.monotonic() - started < 0.8
    result = result_for(report, "erp/payments/p.csv")
    assert (result.status, result.rows_read, result.file_sha256) == ("waiting", 0, "")
    assert result.message.startswith("still being written (modified 0.")
    assert result.message.endswith("s ago); it will be loaded by a later run once unchanged for 1 s")
    assert report.waiting == [result] and report.failures == []
    # the fixture's files were loaded 0.1 s ago: unchanged since, they are skipped, not waiting
    assert {f.status for f in report.files if f.source_table != "erp.payments"} == {"skipped"}
    assert report.totals("erp.payments")["files_waiting"] == 1
    assert (payments(con), ledger(con), quarantined(con)) == ([], [], 0)

    path.write_text(PAYMENTS_HEADER + Y1 + Y2, encoding="utf-8")  # the writer finishes
    age(path, 60)
    report = ingest_landing(con, landing, settle_seconds=1)  # ctime is fresh: watched for 1 s, then read
    result = result_for(report, "erp/payments/p.csv")
    assert (result.status, result.rows_loaded, result.rows_quarantined) == ("loaded", 2, 0)
    assert payments(con) == [
        ("Y1", Decimal("35.80"), "erp/payments/p.csv"),
        ("Y2", Decimal("13.81"), "erp/payments/p.csv"),
    ]
    assert (ledger(con), quarantined(con)) == ([("erp/payments/p.csv", "loaded", 2)], 0)
    assert report.totals("erp.payments")["files_waiting"] == 0
    assert ledger_discrepancies(con) == []


def test_a_young_file_is_loaded_after_a_bounded_wait(con, landing):
    write(landing / "erp/payments/p.csv", PAYMENTS_HEADER + Y1)
    started = time.monotonic()
    report = ingest_landing(con, landing, settle_seconds=0.3)  # may wait up to 0.9 s
    assert time.monotonic() - started >= 0.25  # it waited for the file to settle...
    assert result_for(report, "erp/payments/p.csv").status == "loaded"  # ... and read it within the bound
    assert report.waiting == []


def test_a_file_that_changes_during_the_wait_is_watched_again(con, landing, monkeypatch):
    path = write(landing / "erp/payments/p.csv", PAYMENTS_HEADER + Y1)
    sleeps: list[float] = []
    real_sleep = time.sleep

    def writer_goes_on(seconds: float) -> None:  # the writer appends a line at the end of the first wait
        real_sleep(seconds)
        if not sleeps:
            with path.open("a", encoding="utf-8") as fh:
                fh.write(Y2)
        sleeps.append(seconds)

    monkeypatch.setattr(ingest.time, "sleep", writer_goes_on)
    report = ingest_landing(con, landing, settle_seconds=0.3, max_wait_seconds=5)
    assert len(sleeps) >= 2  # the stat after the first wait differed: a second wait, a second stat
    assert result_for(report, "erp/payments/p.csv").status == "loaded"
    assert [p[0] for p in payments(con)] == ["Y1", "Y2"]

    # the same change with no time left for a second wait: waiting, not read
    path = write(landing / "erp/payments/q.csv", PAYMENTS_HEADER + "Y3" + Y1[2:])
    sleeps.clear()
    report = ingest_landing(con, landing, settle_seconds=0.3, max_wait_seconds=0.4)
    assert len(sleeps) == 1
    assert result_for(report, "erp/payments/q.csv").status == "waiting"
    assert ledger(con, "%q.csv") == []


@pytest.mark.parametrize(
    "name",
    ["p.csv.part", "p.csv.tmp", "p.csv.partial", "p.csv.crdownload", "p.csv.inprogress", ".p.csv", "~p.csv"],
)
def test_temporary_and_hidden_names_are_never_read_until_renamed(con, landing, name):
    path = write(landing / "erp/payments" / name, PAYMENTS_HEADER + Y1 + Y2[:-2])
    write(landing / "erp/payments/.staging/p.csv", PAYMENTS_HEADER + Y1)  # a hidden folder
    write(landing / "erp/payments/_temporary/0/p.csv", PAYMENTS_HEADER + Y1)  # Spark's staging folder
    report = ingest_landing(con, landing, settle_seconds=0)
    assert report.for_table("erp.payments") == []
    assert (payments(con), ledger(con)) == ([], [])

    path.write_text(PAYMENTS_HEADER + Y1 + Y2, encoding="utf-8")
    path.rename(landing / "erp/payments/p.csv")  # write-then-rename: the final name appears complete
    (result,) = ingest_landing(con, landing, settle_seconds=0).for_table("erp.payments")
    assert (result.source_file, result.status, result.rows_loaded) == ("erp/payments/p.csv", "loaded", 2)


def test_landing_names():
    """The rule itself, whatever the extensions: `x.csv.part` is also left out by the extension filter."""
    for name in ("p.csv", "2024/p.csv", "part-0000.parquet", "_p.csv", "p~.csv", "p.partition.csv"):
        assert ingest.is_landing_name(Path(name)), name
    for name in ("p.csv.part", "P.CSV.TMP", "p.partial", "p.crdownload", "p.inprogress", ".p.csv", "~$p.csv"):
        assert not ingest.is_landing_name(Path(name)), name
    for name in (".staging/p.csv", "2024/.tmp/p.csv", "_temporary/0/task/part-0000.parquet", "~old/p.csv"):
        assert not ingest.is_landing_name(Path(name)), name


def test_done_marker_declares_a_fresh_file_complete(con, landing):
    write(landing / "erp/payments/p.csv", PAYMENTS_HEADER + Y1)
    write(landing / "erp/payments/q.csv", PAYMENTS_HEADER + Y2)
    write(landing / "erp/payments/p.csv.done", "")
    started = time.monotonic()
    report = ingest_landing(con, landing, settle_seconds=3600, max_wait_seconds=0)
    assert time.monotonic() - started < 1
    assert result_for(report, "erp/payments/p.csv").status == "loaded"  # marked: no wait
    assert result_for(report, "erp/payments/q.csv").status == "waiting"  # not marked, fresh
    assert ledger(con) == [("erp/payments/p.csv", "loaded", 1)]
    assert len(report.for_table("erp.payments")) == 2  # the marker itself is no landing file


def append_while(monkeypatch, function: str, path: Path) -> None:
    """`function` of the loader appends a line to `path` once its real work is done."""
    real = getattr(ingest, function)

    def and_append(*args):
        out = real(*args)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("Y3,O1,2024-01-02T10:07:00,EUR,card,1.00\n")
        return out

    monkeypatch.setattr(ingest, function, and_append)


@pytest.mark.parametrize("function", ["_read_into_text_table", "scan_file"])
def test_a_file_changed_while_it_is_read_loads_nothing(con, landing, monkeypatch, function):
    path = write(landing / "erp/payments/p.csv", PAYMENTS_HEADER + Y1 + Y2)
    with monkeypatch.context() as m:
        append_while(m, function, path)
        report = ingest_landing(con, landing, settle_seconds=0)
    result = result_for(report, "erp/payments/p.csv")
    assert (result.status, result.rows_read, result.rows_loaded) == ("waiting", 0, 0)
    assert result.message.startswith("changed while it was being read")
    assert (payments(con), ledger(con), quarantined(con)) == ([], [], 0)
    assert con.execute("select count(*) from duckdb_tables() where temporary").fetchone()[0] == 0

    # unchanged since: the next run loads the whole file
    result = result_for(ingest_landing(con, landing, settle_seconds=0), "erp/payments/p.csv")
    assert (result.status, result.rows_loaded) == ("loaded", 3)
    assert ledger_discrepancies(con) == []


def test_a_loaded_path_changed_while_it_is_hashed_loads_and_records_nothing(con, landing, monkeypatch):
    path = write(landing / "erp/payments/p.csv", PAYMENTS_HEADER + Y1 + Y2)
    ingest_landing(con, landing, settle_seconds=0)
    os.utime(path)  # touched: hashed again (not read) to learn whether its content changed
    with monkeypatch.context() as m:
        append_while(m, "scan_file", path)
        result = result_for(ingest_landing(con, landing, settle_seconds=0), "erp/payments/p.csv")
    assert result.status == "waiting"
    assert ledger(con) == [("erp/payments/p.csv", "loaded", 2)]


def test_a_loaded_file_that_changes_is_an_error(con, landing):
    path = write(landing / "erp/payments/p.csv", PAYMENTS_HEADER + Y1 + Y2.replace("13.81", "13.80"))
    (first,) = ingest_landing(con, landing, settle_seconds=0).for_table("erp.payments")
    assert first.status == "loaded"
    loaded_at = con.execute("select loaded_at from audit.ingest_ledger where source_file = 'erp/payments/p.csv'")
    loaded_at = loaded_at.fetchone()[0]
    before = payments(con)

    path.write_text(PAYMENTS_HEADER + Y1 + Y2, encoding="utf-8")  # corrected in place
    report = ingest_landing(con, landing, settle_seconds=0)
    result = result_for(report, "erp/payments/p.csv")
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == ("failed", 0, 0, 0)
    assert result.message == (
        f"erp/payments/p.csv changed after it was loaded on {loaded_at:%Y-%m-%d %H:%M:%S} "
        f"(SHA-256 {first.file_sha256[:12]} -> {ingest.sha256_file(path)[:12]}): a delivered file must not change; "
        "deliver corrections as a new file"
    )
    assert report.failures == [result]
    assert (payments(con), quarantined(con)) == (before, 0)
    assert ledger(con) == [("erp/payments/p.csv", "loaded", 2), ("erp/payments/p.csv", "failed", 0)]
    assert ledger_discrepancies(con) == []

    # every run says so until the file is put back; the original content is then simply already loaded
    assert result_for(ingest_landing(con, landing, settle_seconds=0), "erp/payments/p.csv").status == "failed"
    path.write_text(PAYMENTS_HEADER + Y1 + Y2.replace("13.81", "13.80"), encoding="utf-8")
    restored = result_for(ingest_landing(con, landing, settle_seconds=0), "erp/payments/p.csv")
    assert (restored.status, restored.message) == ("skipped", "already loaded (same SHA-256)")
    assert payments(con) == before


def test_default_settle_interval_is_named_once():
    assert ingest.DEFAULT_SETTLE_SECONDS == 2.0
    kwdefaults = ingest_landing.__kwdefaults__
    assert kwdefaults["settle_seconds"] == ingest.DEFAULT_SETTLE_SECONDS
    assert kwdefaults["max_wait_seconds"] is None
