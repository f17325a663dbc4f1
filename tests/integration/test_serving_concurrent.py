"""A BI reader in another process never sees a lock error, a missing file or a half-published state.

The reader (`serving_reader.py`, a real second process) queries the serving copy in a loop while

1. a real pipeline run (`run_pipeline`, in this process) writes the warehouse and, at its end, the
   `serving/bi_copy` asset publishes a new version;
2. this process re-scores the warehouse (a write transaction) and publishes again, several times.

Before the run the serving folder is seeded with a version published from a small hand-made
warehouse, so the reader has something to read while the pipeline holds the warehouse's write lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from demo.generator import generate
from orchestration.cli.run import run_pipeline
from orchestration.settings import get_settings
from tests.warehouse.serving_fixtures import make_warehouse, rescore
from warehouse.serving import list_versions, publish

READER = Path(__file__).with_name("serving_reader.py")
CUSTOMERS = 1_000  # the run's fixed costs (dbt, training) dominate: fewer customers barely help
REPUBLISHES = 8


def test_reader_sees_only_complete_consistent_versions(segments_home, tmp_path):
    serving = segments_home / "serving"
    generate(segments_home / "demo", customers=CUSTOMERS, seed=11)
    seed = publish(make_warehouse(tmp_path / "seed.duckdb", run_id="seed-run"), serving, "seed-run")

    stop, result = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, str(READER), str(serving), str(stop), str(result)])
    try:
        run_started = time.time()
        assert run_pipeline(get_settings(), landing=segments_home / "demo" / "landing").success
        run_ended = time.time()
        pipeline_version = list_versions(serving)[-1]
        assert pipeline_version != seed.version  # the bi_copy asset published at the end of the run

        warehouse = get_settings().warehouse_path
        for i in range(REPUBLISHES):
            rescore(warehouse, f"rescore-{i}", drop=3)  # holds the write lock while the reader reads
            publish(warehouse, serving, f"rescore-{i}")
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
    assert reader.returncode == 0

    seen = json.loads(result.read_text())
    assert seen["errors"] == []
    assert seen["inconsistencies"] == []
    reads = seen["reads"]
    versions = {v for _, v in reads}
    assert len(reads) > 0 and seen["parquet_reads"] > 0
    # it read while the pipeline wrote the warehouse, and it saw the seed, the run's and re-published versions
    assert any(run_started < t < run_ended for t, _ in reads)
    assert {seed.version, pipeline_version} <= versions and len(versions) >= 3
    assert len(list_versions(serving)) == 3  # retention
