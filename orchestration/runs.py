"""Run control on one `SEGMENTS_HOME`: one run at a time, and what runs that died left behind.

- `home_lock()`: a `segments run` holds an exclusive `flock` on `$SEGMENTS_HOME/run.lock` from start
  to end. The kernel releases it when the process ends, however it ends (kill -9 included), so a lock
  is never stale; the file itself only says who holds it (pid, host, start time, command).
- `reap_dead_runs()`: a run whose process died stays `STARTED` in Dagster's run storage and keeps its
  slot of the `warehouse` pool (limit 1), so every later run waits for it forever: nothing frees a
  slot without the daemon's run monitoring. The next run, holding the home lock, marks such runs
  failed, frees their slots, ends the MLflow runs they left `RUNNING`, records them as `reaped` in the
  warehouse's run records and removes the serving staging folders they left.

A run of the command line carries the tag `segments/launched_by=cli`: it held the home lock while it
ran, so once the lock is ours any such run still `STARTED` is dead. A run launched from the UI does not
take the lock; it counts as dead only when the process that executes it (its pid, from the run's
engine events) is gone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

LOCK_FILE = "run.lock"
LAUNCHED_BY_TAG = "segments/launched_by"
PID_TAG = "segments/pid"
HOST_TAG = "segments/host"
LANDING_TAG = "segments/landing"
FORCED_TAG = "segments/forced"
REPOSITORY_LABEL_TAG = ".dagster/repository"  # dagster._core.storage.tags.REPOSITORY_LABEL_TAG
CLI = "cli"


@dataclass(frozen=True)
class LockHolder:
    """What the lock file says about the process holding it."""

    pid: int | None
    host: str
    started_at: str  # UTC, ISO 8601
    command: str

    def describe(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid}{where}, started {self.started_at}: {self.command}"


class HomeBusy(RuntimeError):
    """Another process holds the home's run lock."""

    def __init__(self, home: Path, holder: LockHolder | None) -> None:
        self.home, self.holder = home, holder
        who = holder.describe() if holder else "a process that has not written its name yet"
        super().__init__(
            f"another run holds SEGMENTS_HOME {home} ({who}); wait for it to end, or run with --wait to queue"
        )


def read_holder(home: Path) -> LockHolder | None:
    try:
        data = json.loads((home / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return None
    if not data:
        return None
    return LockHolder(data.get("pid"), data.get("host", "?"), data.get("started_at", "?"), data.get("command", "?"))


@contextmanager
def home_lock(
    home: Path, *, wait: bool = False, on_wait: Callable[[LockHolder | None], None] | None = None
) -> Iterator[LockHolder]:
    """Hold the run lock of `home` for the block. Busy: raise HomeBusy, or with `wait` block until the
    holder ends (`on_wait` is told who it is first). OSError (read-only home, disk full) propagates."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = read_holder(home)
            if not wait:
                raise HomeBusy(home, holder) from None
            if on_wait:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        me = LockHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me.__dict__).encode(), 0)
        try:
            yield me
        finally:
            os.ftruncate(fd, 0)  # the next holder overwrites it anyway; an empty file says "nobody"
    finally:
        os.close(fd)  # releases the lock


def run_tags(landing: Path | None = None, forced: bool = False) -> dict[str, str]:
    """Tags of a run launched by this process from the command line: who runs it (pid, host), what it reads
    (`landing`, `forced`: every step even without a new file) and the repository label the Dagster UI lists a
    job's runs by, so that the run shows on its job's Runs tab and the timeline like a run launched there."""
    from orchestration.keys import REPOSITORY_LABEL

    tags = {
        REPOSITORY_LABEL_TAG: REPOSITORY_LABEL,
        LAUNCHED_BY_TAG: CLI,
        PID_TAG: str(os.getpid()),
        HOST_TAG: socket.gethostname(),
        FORCED_TAG: str(forced).lower(),
    }
    if landing is not None:
        tags[LANDING_TAG] = str(landing)
    return tags


@dataclass(frozen=True)
class ReapedRun:
    run_id: str
    job_name: str
    pid: int | None
    started_at: str
    slots_freed: int

    def describe(self) -> str:
        pid = f"pid {self.pid} gone" if self.pid else "its process is gone"
        return (
            f"reaped run {self.run_id[:8]} ({self.job_name}, started {self.started_at}, {pid}): marked failed, "
            f"freed {self.slots_freed} pool slot(s)"
        )


@dataclass(frozen=True)
class Reaping:
    """What `reap_dead_runs` cleaned."""

    runs: list[ReapedRun]
    mlflow_runs_ended: int

    def lines(self) -> list[str]:
        lines = [run.describe() for run in self.runs]
        if self.mlflow_runs_ended:
            lines.append(f"ended {self.mlflow_runs_ended} MLflow run(s) the reaped run(s) left running")
        return lines


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _executing_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of the process executing `run`: from our tag, else from the engine event that announced it
    ("Executing steps in process (pid: N)" / "Started process for run (pid: N)")."""
    if run.tags.get(PID_TAG, "").isdigit():
        return int(run.tags[PID_TAG])
    from dagster import DagsterEventType, EventRecordsFilter

    records = instance.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.ENGINE_EVENT, run_ids=[run.run_id]),
        limit=20,
        ascending=True,
    )
    for record in records:
        event = record.event_log_entry.dagster_event
        metadata = getattr(event.event_specific_data, "metadata", None) or {}
        pid = metadata.get("pid")
        if pid is not None:
            return int(pid.value)
    return None


def _is_dead(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[bool, int | None]:
    pid = _executing_pid(instance, run)
    if run.tags.get(LAUNCHED_BY_TAG) == CLI:
        return True, pid  # it held the home lock while it ran, and the lock is ours now
    if run.tags.get(HOST_TAG, socket.gethostname()) != socket.gethostname():
        return False, pid
    return (pid is not None and not _pid_alive(pid)), pid


def reap_dead_runs(
    instance: dg.DagsterInstance,
    *,
    end_mlflow_runs: Callable[[list[str]], int] | None = None,
    mark_in_warehouse: Callable[[list[str]], None] | None = None,
    cleanup: Callable[[], None] | None = None,
) -> Reaping:
    """Mark every run of `instance` whose process is gone as failed, free its pool slots, and hand the
    dead run ids to `end_mlflow_runs` (returns how many MLflow runs it ended), `mark_in_warehouse` and
    `cleanup` (leftover staging folders). Call it holding the home lock. Also frees slots still claimed
    by runs that already ended (e.g. a run marked failed by hand)."""
    from dagster import DagsterRunStatus, RunsFilter

    storage = instance.event_log_storage
    claimed: dict[str, int] = {}
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        for slot in info.claimed_slots:
            claimed[slot.run_id] = claimed.get(slot.run_id, 0) + 1
        for step in info.pending_steps:
            claimed.setdefault(step.run_id, 0)

    unfinished = (DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING)
    dead: list[tuple[dg.DagsterRun, int | None, datetime | None]] = []
    for record in instance.get_run_records(RunsFilter(statuses=list(unfinished))):
        is_dead, pid = _is_dead(instance, record.dagster_run)
        if is_dead:
            dead.append((record.dagster_run, pid, record.start_time and datetime.fromtimestamp(record.start_time, UTC)))
    reaped: list[ReapedRun] = []
    dead_ids = [run.run_id for run, _, _ in dead]
    mlflow_ended = end_mlflow_runs(dead_ids) if (end_mlflow_runs and dead_ids) else 0
    for run, pid, started in dead:
        instance.report_run_failed(
            run, f"Reaped by a later run: the process executing this run (pid {pid}) is gone (killed or crashed)."
        )
        storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(
            ReapedRun(
                run_id=run.run_id,
                job_name=run.job_name,
                pid=pid,
                started_at=started.strftime("%Y-%m-%d %H:%M:%S UTC") if started else "?",
                slots_freed=claimed.pop(run.run_id, 0),
            )
        )
    for run_id in claimed:  # slots of runs that ended without freeing them
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
    if mark_in_warehouse:  # also with no dead run: the callback may settle other open records
        mark_in_warehouse(dead_ids)
    if cleanup:
        cleanup()
    return Reaping(reaped, mlflow_ended)


def pool_holders(instance: dg.DagsterInstance, pool: str) -> list[str]:
    """'run <id8> (<job>, <status>) step <step>' for every slot of `pool` currently claimed."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    holders = []
    for slot in info.claimed_slots:
        run = instance.get_run_by_id(slot.run_id)
        what = f"{run.job_name}, {run.status.value.lower()}" if run else "unknown run"
        holders.append(f"run {slot.run_id[:8]} ({what}) step {slot.step_key}")
    return holders


__all__ = [
    "HomeBusy",
    "LockHolder",
    "ReapedRun",
    "Reaping",
    "home_lock",
    "pool_holders",
    "reap_dead_runs",
    "read_holder",
    "run_tags",
]
