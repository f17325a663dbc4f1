"""Run control on a home: the run lock (a second run refused with the holder's pid, free again once the
holder is killed -9), the reaper (a dead run marked failed and its pool slot freed; a live one kept),
and the one-line explanations of a full disk and a read-only home."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.storage.dagster_run import DagsterRun

from orchestration.cli.run import explain_failure
from orchestration.runs import LAUNCHED_BY_TAG, PID_TAG, HomeBusy, home_lock, read_holder, reap_dead_runs
from orchestration.settings import DAGSTER_YAML

ROOT = Path(__file__).resolve().parents[2]


def _hold_lock(home: Path) -> subprocess.Popen:
    """A process that takes the home's lock and sleeps; returns once it holds it."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from orchestration.runs import home_lock
        with home_lock(Path({str(home)!r})):
            print("held", flush=True)
            time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_with_the_holders_pid_and_the_lock_dies_with_its_holder(tmp_path):
    home = tmp_path / "home"
    holder = _hold_lock(home)
    try:
        with pytest.raises(HomeBusy) as busy, home_lock(home):
            pass
        assert busy.value.holder.pid == holder.pid
        assert f"pid {holder.pid}" in str(busy.value)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    with home_lock(home) as me:  # kill -9 left no stale lock
        assert me.pid == os.getpid()
        assert read_holder(home).pid == os.getpid()
    assert read_holder(home) is None


def test_wait_queues_behind_the_holder(tmp_path):
    home = tmp_path / "home"
    holder = _hold_lock(home)
    told = []
    t0 = time.monotonic()
    try:
        killer = subprocess.Popen(["sh", "-c", f"sleep 1; kill -9 {holder.pid}"])
        with home_lock(home, wait=True, on_wait=told.append):
            waited = time.monotonic() - t0
    finally:
        killer.wait()
        holder.wait()
    assert told and told[0].pid == holder.pid
    assert waited >= 0.9


@pytest.fixture
def instance(tmp_path):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        yield instance


def _started_run(instance: DagsterInstance, tags: dict[str, str]) -> DagsterRun:
    """A run as a process left it when it died: STARTED, never ended."""
    run = DagsterRun(job_name="build", run_id=str(uuid.uuid4()), tags=tags, status=DagsterRunStatus.STARTED)
    return instance.add_run(run)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_reaper_fails_dead_runs_frees_their_slots_and_keeps_live_ones(instance):
    cli_run = _started_run(instance, {LAUNCHED_BY_TAG: "cli", PID_TAG: str(_dead_pid())})
    ui_dead = _started_run(instance, {PID_TAG: str(_dead_pid())})
    ui_live = _started_run(instance, {PID_TAG: str(os.getpid())})
    assert cli_run.status == DagsterRunStatus.STARTED
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default("warehouse")
    assert storage.claim_concurrency_slot("warehouse", cli_run.run_id, "ingest").is_claimed
    ended, marked, cleaned = [], [], []

    def end_mlflow(ids):
        ended.extend(ids)
        return 1

    reaping = reap_dead_runs(
        instance, end_mlflow_runs=end_mlflow, mark_in_warehouse=marked.extend, cleanup=lambda: cleaned.append(1)
    )
    reaped = {r.run_id: r for r in reaping.runs}
    assert set(reaped) == {cli_run.run_id, ui_dead.run_id}
    assert reaped[cli_run.run_id].slots_freed == 1
    assert instance.get_run_by_id(cli_run.run_id).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(ui_dead.run_id).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(ui_live.run_id).status == DagsterRunStatus.STARTED
    assert not storage.get_concurrency_info("warehouse").claimed_slots
    assert sorted(ended) == sorted(marked) == sorted([cli_run.run_id, ui_dead.run_id])
    assert cleaned == [1]
    assert any(line.startswith(f"reaped run {cli_run.run_id[:8]}") for line in reaping.lines())
    assert reap_dead_runs(instance).runs == []  # nothing left to reap


def test_reaper_frees_slots_of_runs_that_already_ended(instance):
    run = _started_run(instance, {PID_TAG: str(os.getpid())})
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default("warehouse")
    storage.claim_concurrency_slot("warehouse", run.run_id, "dbt")
    instance.report_run_failed(run)  # ended, slot still claimed (no daemon frees it)
    assert storage.get_concurrency_info("warehouse").claimed_slots
    assert reap_dead_runs(instance).runs == []
    assert not storage.get_concurrency_info("warehouse").claimed_slots


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OSError: [Errno 28] No space left on device: '/h/x'", "error: disk full"),
        ("sqlite3.OperationalError: database or disk is full", "error: disk full"),
        ("IO Error: Could not write file: No space left on device", "error: disk full"),
        ("OSError: [Errno 30] Read-only file system: '/h/run.lock'", "error: read-only file system"),
        ("sqlite3.OperationalError: attempt to write a readonly database", "error: read-only file system"),
        ("KeyError: 'customer_id'", None),
    ],
)
def test_failures_the_user_can_act_on_are_one_line(tmp_path, text, expected):
    line = explain_failure(text, tmp_path)
    if expected is None:
        assert line is None
    else:
        assert line.startswith(expected)
        assert "\n" not in line and "segments run" in line
