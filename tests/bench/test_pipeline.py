"""The benchmark harness: memory sampling of a process tree, stage attribution, the report tables."""

from __future__ import annotations

import json
import sys

import pytest

from bench.data import default_volumes, reusable
from bench.measure import Measurement, run_measured
from bench.pipeline import (
    MARK_END,
    MARK_START,
    STAGES,
    StepWindow,
    attribute,
    job_stages,
    render_markdown,
    update_benchmarks,
)
from bench.references import floor, pandas_reference
from demo.generator import generate
from orchestration.keys import STAGES as TAGGED_STAGES


def test_run_measured_sees_memory_of_a_child_process(tmp_path):
    # the parent allocates little; its child holds ~300 MB for a moment: the tree's peak must show it
    child = "import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.0)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    m = run_measured([sys.executable, "-c", parent], interval=0.05)
    assert m.returncode == 0
    assert m.peak_rss_bytes > 300 * 2**20
    assert m.seconds >= 1.0
    assert any(rss > 300 * 2**20 for _, rss in m.samples)


def test_run_measured_reports_failure(tmp_path):
    log = tmp_path / "out.log"
    m = run_measured([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], log_path=log)
    assert m.returncode == 3
    assert "boom" in log.read_text()


# one step key of each kind in build_segments_job and the stage its op is tagged with
BUILD_JOB_STAGES = {
    "landing_files": "ingest",
    "audit__ingest_ledger_every_file_reconciles": "ingest",
    "raw_tables_pass_expectation_suites": "quality",
    "marts_pass_expectation_suites": "quality",
    "segment_tables_pass_expectation_suites": "quality",
    "segments__customer_segments_assignments_cover_all_customers": "quality",
    "identity_input_models": "dbt",
    "warehouse_models": "dbt",
    "identity_resolution": "identity",
    "ml__customer_segmentation": "training",
    "ml__customer_segmentation_champion": "training",
    "ml__customer_segmentation_champion_challenger_passes_promotion_gates": "training",
    "ml__customer_segment_assignments": "scoring",
    "segment_models": "scoring",
    "serving__bi_copy": "publish",
}


def test_steps_are_attributed_to_the_stage_of_their_op_tag(tmp_path):
    """The bench maps the step keys of a finished child run to stages with the definitions it builds in
    its own process: they need no warehouse, and every tagged stage is a column of the bench."""
    home = tmp_path / "home"
    stages = job_stages(home, tmp_path / "landing")
    assert not (home / "warehouse.duckdb").exists()
    assert set(TAGGED_STAGES) <= set(STAGES)
    assert set(stages.values()) == set(TAGGED_STAGES)  # the build job has a step of every stage
    assert {step: stages.get(step) for step in BUILD_JOB_STAGES} == BUILD_JOB_STAGES


def test_attribute_splits_time_and_memory_by_stage():
    t0 = 1_000.0
    samples = [(t0 + i * 0.5, rss) for i, rss in enumerate([100, 200, 900, 300, 400, 2000, 500, 100])]
    m = Measurement(["segments", "run"], 0, t0, 4.0, 2000, samples)
    windows = [
        StepWindow("landing_files", t0 + 0.4, t0 + 1.1),  # samples 200, 900
        StepWindow("warehouse_models", t0 + 1.4, t0 + 2.6),  # 300, 400, 2000
        StepWindow("serving__bi_copy", t0 + 3.1, t0 + 3.2),  # no sample inside: the one before counts
    ]
    models = [("marts/customer_features", t0 + 2.6, 0.2), ("marts/orders", t0 + 2.0, 0.5)]
    stages = {"landing_files": "ingest", "warehouse_models": "dbt", "serving__bi_copy": "publish"}
    out = attribute(m, windows, models, stages)
    assert set(out["seconds"]) == set(STAGES)
    expected = {
        "ingest": 0.7,
        "features": 0.2,
        "dbt": 1.0,  # 1.2 s step minus the feature model
        "publish": 0.1,
        "start-up": 4.0 - 0.7 - 1.2 - 0.1,
    }
    assert {stage: out["seconds"][stage] for stage in expected} == pytest.approx(expected, abs=1e-9)
    assert out["peak_gib"]["ingest"] == round(900 / 2**30, 2)
    assert out["total_seconds"] == 4.0
    assert out["slowest_dbt_models"][0] == ("marts/orders", 0.5)
    # a step without a stage tag is start-up: its time is what the stages do not account for
    untagged = attribute(m, windows, models, {k: v for k, v in stages.items() if k != "serving__bi_copy"})
    assert untagged["seconds"]["publish"] == 0.0
    assert untagged["seconds"]["start-up"] == pytest.approx(4.0 - 0.7 - 1.2, abs=1e-9)


def _scale(persons: int) -> dict:
    seconds = dict.fromkeys(STAGES, 1.0)
    peak = dict.fromkeys(STAGES, 0.5)
    run = {
        "seconds": seconds,
        "peak_gib": peak,
        "total_seconds": 9.0,
        "total_peak_gib": 0.6,
        "steps": {},
        "slowest_dbt_models": [("marts/orders", 0.4)],
    }
    return {
        "persons": persons,
        "generation": {"seconds": 2.0, "peak_gib": 0.3, "rows": {"erp.orders": 20 * persons}, "landing_bytes": 2**30},
        "full": run,
        "rerun": {**run, "total_seconds": 0.5},
        "floor": {"seconds": 3.0, "peak_gib": 0.2},
        "pandas": {"seconds": 6.0, "peak_gib": 1.0},
        "core": {"seconds": 4.0, "peak_gib": 0.5},
        "ratios": {
            "pipeline_over_floor": 3.0,
            "pipeline_over_pandas": 1.5,
            "pandas_over_core": 1.5,
            "core_peak_over_pandas_peak": 0.5,
            "rerun_over_full": 0.056,
        },
    }


def test_report_renders_and_replaces_only_its_section(tmp_path):
    report = {
        "machine": {
            "cores": 2,
            "cpu": "test cpu",
            "memory_gib": 24,
            "os": "linux",
            "python": "3.11",
            "packages": {"duckdb": "2.0"},
        },
        "measured_at": "now",
        "scales": [_scale(10), _scale(100)],
    }
    md = render_markdown(report)
    assert "| 10 | 200 |" in md and "| 100 | 2,000 |" in md and "**3.00**" in md
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nhand-written intro\n")
    update_benchmarks(path, md)
    update_benchmarks(path, md.replace("test cpu", "other cpu"))
    text = path.read_text()
    assert text.count(MARK_START) == 1 and text.count(MARK_END) == 1
    assert "hand-written intro" in text and "other cpu" in text and "test cpu" not in text


def test_bench_data_is_reused_only_for_the_same_persons_seed_and_volumes(tmp_path):
    """A hand-written manifest: any difference in persons, seed or a volume asked for means generating anew."""
    volumes = {"orders_per_customer": 20.0, "lines_per_order": 2.0, "tickets_per_customer": 0.5, "duplicate_rate": 0.1}
    assert not reusable(tmp_path, 1_000, 7, volumes)  # no manifest yet
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "manifest.json").write_text(
        json.dumps({"customers": 1_000, "seed": 7, **volumes, "rows": {}})
    )
    assert reusable(tmp_path, 1_000, 7, volumes)
    assert reusable(tmp_path, 1_000, 7, {})  # no volume asked for: persons and seed decide
    assert not reusable(tmp_path, 2_000, 7, volumes)
    assert not reusable(tmp_path, 1_000, 8, volumes)
    for name in volumes:
        assert not reusable(tmp_path, 1_000, 7, {**volumes, name: volumes[name] * 2}), name


def test_references_compute_rfm_for_every_account(tmp_path):
    generate(tmp_path / "demo", customers=300, seed=3, orders_per_customer=4.0)
    # the manifest carries every volume the reuse rule compares: reused only with the volumes asked for
    assert reusable(tmp_path / "demo", 300, 3, {**default_volumes(), "orders_per_customer": 4.0})
    assert not reusable(tmp_path / "demo", 300, 3, default_volumes())
    landing = tmp_path / "demo" / "landing"
    counts = floor(landing, tmp_path / "floor.duckdb")
    assert counts["customer_rfm"] > 200 and counts["erp/payments"] > 0 and counts["events/events"] > 0
    out = pandas_reference(landing, tmp_path / "pandas.duckdb", k=3)
    # both see (about) the same accounts: the bad rows are dropped slightly differently
    assert abs(out["customer_segments"] - counts["customer_rfm"]) <= 0.05 * counts["customer_rfm"]
