"""The loader's stat cache: a landing file whose path, size, mtime and ctime match a loaded file is not even hashed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import warehouse.ingest as ingest
from warehouse.ingest import ingest_landing
from warehouse.reconcile import ledger_discrepancies

H = (
    "crm_customer_id,first_name,last_name,email,phone,street,city,postal_code,country,"
    "birth_date,created_at,updated_at\n"
)


def row(i: int, last: str = "Lee") -> str:
    return f"C{i},Ann,{last},a{i}@x.org,,,,,,,2024-01-01T00:00:00,\n"


@pytest.fixture
def landing(tmp_path) -> Path:
    folder = tmp_path / "landing" / "crm" / "customers"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text(H + row(1) + row(2), encoding="utf-8")
    return tmp_path / "landing"


def count_hashes(monkeypatch) -> list[Path]:
    hashed: list[Path] = []
    real = ingest.scan_file

    def spy(path: Path) -> ingest.FileScan:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(ingest, "scan_file", spy)
    return hashed


def test_ledger_records_the_files_mtime(con, landing):
    (first,) = ingest_landing(con, landing, settle_seconds=0).files
    path = landing / "crm/customers/a.csv"
    assert con.execute("select file_bytes, file_mtime_ns from audit.ingest_ledger").fetchall() == [
        (path.stat().st_size, path.stat().st_mtime_ns)
    ]
    assert first.status == "loaded"


def test_unchanged_file_is_skipped_without_hashing(con, landing, monkeypatch):
    (first,) = ingest_landing(con, landing, settle_seconds=0).files

    def fail(path: Path) -> ingest.FileScan:
        raise AssertionError(f"{path} hashed although unchanged")

    monkeypatch.setattr(ingest, "scan_file", fail)
    (again,) = ingest_landing(con, landing, settle_seconds=0).files
    assert again.status == "skipped"
    assert again.message == "already loaded (unchanged size and mtime)"
    assert again.file_sha256 == first.file_sha256
    assert con.execute("select count(*) from audit.ingest_ledger").fetchone()[0] == 1
    assert con.execute("select count(*) from crm.customers").fetchone()[0] == 2


def test_touched_file_is_hashed_again_not_read_and_skipped_by_hash(con, landing, monkeypatch):
    ingest_landing(con, landing, settle_seconds=0)
    path = landing / "crm/customers/a.csv"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    hashed = count_hashes(monkeypatch)

    def no_read(*args):
        raise AssertionError("a loaded path with unchanged content was read again")

    monkeypatch.setattr(ingest, "_read_into_text_table", no_read)
    (again,) = ingest_landing(con, landing, settle_seconds=0).files
    assert hashed == [path]
    assert (again.status, again.message) == ("skipped", "already loaded (same SHA-256)")
    assert con.execute("select count(*) from crm.customers").fetchone()[0] == 2
    # the ledger's stat snapshot was refreshed: the next run trusts it without hashing
    (third,) = ingest_landing(con, landing, settle_seconds=0).files
    assert hashed == [path]
    assert third.message == "already loaded (unchanged size and mtime)"


def test_ledger_rows_without_ctime_still_hit_the_stat_cache(con, landing, monkeypatch):
    """Rows written before the ledger recorded ctime match on path, size and mtime as they used to."""
    ingest_landing(con, landing, settle_seconds=0)
    con.execute("update audit.ingest_ledger set file_ctime_ns = null")
    hashed = count_hashes(monkeypatch)
    (again,) = ingest_landing(con, landing, settle_seconds=0).files
    assert hashed == []
    assert again.message == "already loaded (unchanged size and mtime)"


def test_rewrite_that_restores_size_and_mtime_is_still_hashed(con, landing, monkeypatch):
    """`cp -p` / `rsync -t` set the old mtime on new content; the inode change time gives them away."""
    ingest_landing(con, landing, settle_seconds=0)
    path = landing / "crm/customers/a.csv"
    st = path.stat()
    path.write_text(H + row(1) + row(2, last="Lea"), encoding="utf-8")  # same size, other content
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    hashed = count_hashes(monkeypatch)
    (again,) = ingest_landing(con, landing, settle_seconds=0).files
    assert hashed == [path]
    # new content at a loaded path is refused (a delivered file must not change), not reloaded
    assert again.status == "failed" and "changed after it was loaded" in again.message
    assert con.execute("select count(*) from audit.quarantine").fetchone()[0] == 0
    assert con.execute("select last_name from crm.customers order by crm_customer_id").fetchall() == [("Lee",)] * 2


def test_renamed_identical_file_is_recognised_by_hash(con, landing, monkeypatch):
    ingest_landing(con, landing, settle_seconds=0)
    (landing / "crm/customers/a.csv").rename(landing / "crm/customers/b.csv")
    hashed = count_hashes(monkeypatch)
    (again,) = ingest_landing(con, landing, settle_seconds=0).files
    assert len(hashed) == 1
    assert (again.source_file, again.status, again.message) == (
        "crm/customers/b.csv",
        "skipped",
        "already loaded (same SHA-256)",
    )


def test_modified_file_is_hashed_and_refused(con, landing, monkeypatch):
    """A loaded path with new content is an error, whether its size changed or only its mtime: hashed, not
    trusted, and nothing of it loaded (it used to be loaded again as a new file)."""
    ingest_landing(con, landing, settle_seconds=0)
    path = landing / "crm/customers/a.csv"
    st = path.stat()
    path.write_text(H + row(1) + row(2) + row(3), encoding="utf-8")
    hashed = count_hashes(monkeypatch)
    (again,) = ingest_landing(con, landing, settle_seconds=0).files
    assert hashed == [path]
    assert (again.status, again.rows_loaded, again.rows_already_loaded) == ("failed", 0, 0)
    # same size and a new mtime: the content is hashed, not trusted
    path.write_text(H + row(1) + row(2) + row(4), encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    (third,) = ingest_landing(con, landing, settle_seconds=0).files
    assert len(hashed) == 2
    assert (third.status, third.rows_loaded, third.rows_already_loaded) == ("failed", 0, 0)
    assert [r[0] for r in con.execute("select crm_customer_id from crm.customers order by 1").fetchall()] == [
        "C1",
        "C2",
    ]
    assert con.execute("select status from audit.ingest_ledger order by loaded_at").fetchall() == [
        ("loaded",),
        ("failed",),
        ("failed",),
    ]
    assert ledger_discrepancies(con) == []


def test_failed_file_is_not_cached(con, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    (landing / "erp" / "orders").mkdir(parents=True)
    (landing / "erp" / "orders" / "o.csv").write_text("order_id,erp_account_id\nO1,A1\n", encoding="utf-8")
    assert [f.status for f in ingest_landing(con, landing, settle_seconds=0).files] == ["failed"]
    hashed = count_hashes(monkeypatch)
    assert [f.status for f in ingest_landing(con, landing, settle_seconds=0).files] == ["failed"]
    assert len(hashed) == 1
    assert con.execute("select count(*) from audit.ingest_ledger where status = 'failed'").fetchone()[0] == 2


def test_ledger_of_an_older_warehouse_gains_the_column(con, landing):
    con.execute(
        """create schema audit;
           create table audit.ingest_ledger (source_table varchar not null, source_file varchar not null,
               file_sha256 varchar not null, file_bytes bigint, rows_read bigint, rows_loaded bigint,
               rows_quarantined bigint, status varchar not null, message varchar, extra_columns varchar[],
               loaded_at timestamp not null, run_id varchar, rows_already_loaded bigint default 0);
           insert into audit.ingest_ledger values
               ('crm.customers', 'crm/customers/old.csv', 'x', 1, 0, 0, 0, 'loaded', null, [],
                now()::timestamp, null, 0);"""
    )
    (result,) = ingest_landing(con, landing, settle_seconds=0).files
    assert result.status == "loaded"
    assert con.execute(
        "select source_file, file_mtime_ns is null from audit.ingest_ledger order by loaded_at"
    ).fetchall() == [("crm/customers/old.csv", True), ("crm/customers/a.csv", False)]
