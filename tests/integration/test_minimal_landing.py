"""A user's own CRM export and nothing else flows through the whole pipeline, while a BI reader in
another process reads the serving copy.

Only `landing/crm/customers/` has a file (the contract's columns, CSV with quoted fields and an
extra column); every other source is empty, which is valid.

The reader (`serving_reader.py`, a real second process) queries the serving copy in a loop while

1. the real pipeline run (`run_pipeline`, in this process) writes the warehouse and, at its end, the
   `serving/bi_copy` asset publishes a new version;
2. this process re-scores a copy of the run's warehouse (a write transaction) and publishes it again,
   several times. The copy keeps the run's own warehouse as the run left it for the first test; the
   reader never opens a warehouse, only the serving folder, so it reads the same publications.

Before the run the serving folder is seeded with a version published from a small hand-made
warehouse, so the reader has something to read while the pipeline holds the warehouse's write lock.
One run serves both tests: a pipeline run's fixed costs (dbt, Dagster, MLflow) dominate its time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from ml.segmentation.store import SEGMENT_FAMILIES
from orchestration.cli.run import run_pipeline
from orchestration.settings import get_settings
from tests.warehouse.serving_fixtures import make_warehouse, rescore
from warehouse.serving import list_versions, publish

pytestmark = pytest.mark.pipeline_runs(1)

HEADER = (
    "crm_customer_id,first_name,last_name,email,phone,street,city,postal_code,country,"
    "birth_date,created_at,loyalty_tier\n"
)
READER = Path(__file__).with_name("serving_reader.py")
REPUBLISHES = 8


def write_export(folder: Path) -> None:
    folder.mkdir(parents=True)
    rows = [
        (
            f'X{i},Ann{i},"Smith, {i}",ann{i}@smith-family.co.uk,+44 20 7946 {i:04d},1 High St,London,E1 6AN,GB,'
            f"1980-02-0{1 + i % 9},2024-0{1 + i % 9}-15T10:00:00,gold"
        )
        for i in range(60)
    ]
    # a placeholder address typed into the export: blocked, so it links nobody and never survives
    rows.append("X60,Bo,Placeholder,test@example.com,,2 High St,London,E1 6AN,GB,1981-01-01,2024-01-15T10:00:00,gold")
    # placeholder phones and postal codes, caught by the blocklist's patterns (constant regexes in a real run)
    rows.append(
        "X61,Cy,Zeros,cy@zeros.example.co.uk,07777 777777,3 High St,London,000,GB,1982-01-01,2024-01-15T10:00:00,gold"
    )
    rows.append(
        "X62,Di,Counting,di@counting.co.uk,+44 1234567890,4 High St,London,E1 6AN,GB,"
        "1983-01-01,2024-01-15T10:00:00,gold"
    )
    (folder / "export.csv").write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def watched_run(segments_home, tmp_path_factory):
    """The CRM export in the default landing folder, a seeded serving folder and a reader process
    reading it; the pipeline run, then REPUBLISHES re-scorings published from a copy of its warehouse.
    Returns what the reader saw and when, with the versions published."""
    write_export(segments_home / "landing" / "crm" / "customers")
    tmp = tmp_path_factory.mktemp("serving_reader")
    serving = segments_home / "serving"  # the run's settings.serving_dir: the bi_copy asset publishes here
    seed = publish(make_warehouse(tmp / "seed.duckdb", run_id="seed-run"), serving, "seed-run")

    stop, result = tmp / "stop", tmp / "reader.json"
    reader = subprocess.Popen([sys.executable, str(READER), str(serving), str(stop), str(result)])
    try:
        run_started = time.time()
        assert run_pipeline(get_settings()).success  # default landing folder: $SEGMENTS_HOME/landing
        run_ended = time.time()
        pipeline_version = list_versions(serving)[-1]

        rescored, warehouse = tmp / "rescored.duckdb", get_settings().warehouse_path
        shutil.copyfile(warehouse, rescored)
        if warehouse.with_name(warehouse.name + ".wal").exists():  # closed cleanly, so normally checkpointed
            shutil.copyfile(warehouse.with_name(warehouse.name + ".wal"), rescored.with_name(rescored.name + ".wal"))
        for i in range(REPUBLISHES):
            rescore(rescored, f"rescore-{i}", drop=3)  # holds the write lock while the reader reads
            publish(rescored, serving, f"rescore-{i}")
            # a Parquet reader is safe for keep - 1 publications after resolving `current`
            time.sleep(0.3)
    finally:
        stop.touch()
        try:
            reader.wait(timeout=60)
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait()
            raise
    return {
        "returncode": reader.returncode,
        "seen": json.loads(result.read_text()) if result.exists() else None,
        "run_started": run_started,
        "run_ended": run_ended,
        "seed_version": seed.version,
        "pipeline_version": pipeline_version,
        "versions_left": list_versions(serving),
    }


def test_crm_export_alone_gets_every_customer_a_segment(watched_run, segments_home):
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        n = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        assert n("select count(*) from crm.customers") == 63
        assert n("select count(*) from erp.orders") == 0
        assert n("select count(*) from marts.customers") == 63
        # one row per customer per family (behavioural, rfm, predictive)
        families = len(SEGMENT_FAMILIES)
        assert n("select count(*) from segments.customer_segments") == families * 63
        distinct = n("select count(distinct customer_id || segment_family) from segments.customer_segments")
        assert distinct == families * 63
        assert n("select email from marts.customers where last_name = 'Placeholder'") is None
        blocked = dict(
            con.execute(
                "select source_record_id, blocked_values from intermediate.int_identity_candidates "
                "where source_record_id in ('X61', 'X62')"
            ).fetchall()
        )
        assert blocked == {
            "X61": ["phone: one repeated digit", "postal_code: all zeros"],
            "X62": ["phone: sequential placeholder"],
        }
        assert n("select count(*) from intermediate.int_identity_candidates where len(blocked_values) > 0") == 3
        assert n("select count(*) from segments.customer_segments where segment_name is null") == 0
        # no orders and no consent data: nobody is profiled, everyone gets a fallback with its reason in each family
        assert (
            n(
                "select count(*) from segments.customer_segments "
                "where is_fallback and fallback_reason = 'no_profiling_consent'"
            )
            == families * 63
        )
        assert (
            n(
                "select count(*) from segments.customer_segments "
                "where segment_key = 'rfm_not_profiled' and r_score is null"
            )
            == 63
        )
        # one profile row per family, each the whole family
        assert con.execute(
            "select segment_family, segment_key, customers, share from segments.segment_profiles order by 1"
        ).fetchall() == [
            ("behavioural", "fallback_not_profiled", 63, 1.0),
            ("predictive", "fallback_not_profiled", 63, 1.0),
            ("rfm", "rfm_not_profiled", 63, 1.0),
        ]
        assert n("select list(extra_columns)[1][1] from audit.ingest_ledger") == "loyalty_tier"
        assert n("select last_name from marts.customers where email = 'ann3@smith-family.co.uk'") == "Smith, 3"

    # the pattern hits above came from constant regexes (compiled once), not from the join on the blocklist
    # the model falls back to when the seed is no table (parse time, unit tests)
    (compiled,) = (segments_home / "dbt" / "target").glob(
        "identity_input_models-*/compiled/segments_warehouse/models/intermediate/identity/int_identity_candidates.sql"
    )
    sql = compiled.read_text(encoding="utf-8")
    assert "regexp_matches(phone_nsn, '^0+$')" in sql and "regexp_matches(s.phone_nsn, b.value)" not in sql


def test_reader_sees_only_complete_consistent_versions(watched_run):
    """A BI reader in another process never sees a lock error, a missing file or a half-published state."""
    assert watched_run["returncode"] == 0
    # the bi_copy asset published at the end of the run
    assert watched_run["pipeline_version"] != watched_run["seed_version"]

    seen = watched_run["seen"]
    assert seen["errors"] == []
    assert seen["inconsistencies"] == []
    reads = seen["reads"]
    versions = {v for _, v in reads}
    assert len(reads) > 0 and seen["parquet_reads"] > 0
    # it read while the pipeline wrote the warehouse, and it saw the seed, the run's and re-published versions
    assert any(watched_run["run_started"] < t < watched_run["run_ended"] for t, _ in reads)
    assert {watched_run["seed_version"], watched_run["pipeline_version"]} <= versions and len(versions) >= 3
    assert len(watched_run["versions_left"]) == 3  # retention
