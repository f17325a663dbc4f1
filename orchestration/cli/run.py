"""`segments run`: the whole pipeline in this process, its progress on the console, its outcome.

`run_pipeline()` is the application entry point of a run (the command line and the tests call it): it
checks its inputs and runs the build job with `execute_job()`, which runs any job of the code location
(`segments bench` hands it to the identity and segmentation benches). While a job runs, a thread prints
every step as `[stage] name`, the stage read from the op's tag (`orchestration.keys.step_stages`), and
the full dbt/Dagster log goes to `$SEGMENTS_HOME/logs/`.

A run holds the home's run lock (`orchestration.runs.home_lock`) from start to end: a second run on
the same home is refused at once (exit 3) or, with `--wait`, queued. Holding it, a run first reaps the
runs that died before it (`reap_dead_runs`). Ctrl-C and SIGTERM stop a run between or inside steps;
one that does not stop within `STOP_GRACE_SECONDS` is marked failed and the process exits, leaving the
home for the next run to recover. Failures the user can act on (disk full, read-only home) are said
in one line (`explain_failure`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from orchestration.cli.summary import print_summary, run_warnings
from orchestration.runs import HomeBusy, home_lock
from orchestration.settings import Settings, get_settings, remember_landing

if TYPE_CHECKING:
    import dagster as dg


class RunRefused(ValueError):
    """The inputs of a run are unusable (`segments run` exits with 2); nothing ran."""


EXIT_FAILED, EXIT_REFUSED, EXIT_BUSY = 1, 2, 3
# After Ctrl-C or SIGTERM, how long a run may take to stop by itself before it is marked failed and the
# process exits (e.g. a step waiting for a pool slot checks for interrupts only when it gets one).
STOP_GRACE_SECONDS = 20.0

_DISK_FULL = re.compile(r"No space left on device|database or disk is full|disk I/O error|Errno 28\b|Errno 122\b")
_READ_ONLY = re.compile(r"Read-only file system|readonly database|read-only database|Errno 30\b")


def explain_failure(text: str, home: Path) -> str | None:
    """One line saying what happened and what to do, when `text` (an error and its causes) shows a full
    disk or a read-only home; None otherwise."""
    if _READ_ONLY.search(text):
        return (
            f"error: read-only file system: SEGMENTS_HOME {home} cannot be written. Make it writable (or point "
            "SEGMENTS_HOME elsewhere), then run `segments run` again: the interrupted work is redone."
        )
    if _DISK_FULL.search(text):
        try:
            free = f"{shutil.disk_usage(home).free / 2**20:,.0f} MB free"
        except OSError:
            free = "free space unknown"
        return (
            f"error: disk full: the disk of SEGMENTS_HOME {home} ({free}) could not take the run's writes. Free "
            "space, then run `segments run` again: nothing loaded is lost, the interrupted step is redone."
        )
    return None


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """A finished run of one job: its Dagster result, its log, and how long it and each of its steps took."""

    settings: Settings
    job_name: str
    result: Any  # dagster.ExecuteInProcessResult
    log_path: Path
    seconds: float  # definitions loading and the run
    step_seconds: Mapping[str, float]  # step key -> seconds from its start to its success or failure
    step_stages: Mapping[str, str]  # step key -> stage (orchestration.keys.STAGES), from the op tags
    nothing_new: bool  # succeeded without ingesting anything: every step after the ingest was skipped

    @property
    def success(self) -> bool:
        return self.result.success

    @property
    def run_id(self) -> str:
        return self.result.run_id

    @property
    def exit_code(self) -> int:
        return 0 if self.success else EXIT_FAILED

    def failure_text(self) -> str:
        """Every error message of the run's failed steps and of the run itself, causes included."""
        from dagster import DagsterEventType

        texts = []
        for event in self.result.all_events:
            if event.event_type == DagsterEventType.STEP_FAILURE:
                err = event.step_failure_data.error
                while err is not None:
                    texts.append(err.message)
                    err = err.cause
            elif event.event_type == DagsterEventType.RUN_FAILURE and event.message:
                texts.append(event.message)
        return "\n".join(texts)


def add_parser(sub) -> None:
    r = sub.add_parser("run", help="materialize the whole pipeline in-process")
    r.add_argument(
        "--landing",
        help="landing folder, remembered for later runs of this home and the UI's launches (default: "
        "$SEGMENTS_LANDING, else the one remembered, the project's landing or $SEGMENTS_HOME/landing)",
    )
    r.add_argument(
        "--definition",
        help="segment definition YAML to train and score with, remembered for later runs of this home "
        "(default: the one remembered, else the project's `definition`)",
    )
    r.add_argument(
        "--force",
        action="store_true",
        help=(
            "rebuild everything even when no landing file is new (e.g. after changing a dbt model); "
            "implied by --definition"
        ),
    )
    r.add_argument(
        "--as-of",
        type=_iso_date,
        help="reference date of the features (YYYY-MM-DD; default: the day of the latest completed order)",
    )
    r.add_argument(
        "--wait", action="store_true", help="if another run holds this SEGMENTS_HOME, wait for it instead of exiting"
    )
    r.set_defaults(func=cmd_run)


def _iso_date(text: str) -> str:
    import datetime

    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def cmd_run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.as_of:
        settings = dataclasses.replace(settings, as_of=args.as_of)
    try:
        outcome = run_pipeline(
            settings,
            landing=Path(args.landing) if args.landing else None,
            definition=Path(args.definition) if args.definition else None,
            force=args.force,
            wait=args.wait,
        )
    except RunRefused as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except HomeBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BUSY
    except KeyboardInterrupt:
        print("stopped (Ctrl-C/SIGTERM): a plain `segments run` completes the work", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - only what the user can act on is turned into one line
        line = explain_failure(f"{type(err).__name__}: {err} {err.__cause__ or ''}", settings.home)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return EXIT_FAILED
    warnings = run_warnings(outcome.settings, outcome.result)
    state = "succeeded" if not warnings else f"succeeded with {len(warnings)} warning(s)"
    state = state if outcome.success else "FAILED"
    print(f"run {state} in {outcome.seconds:.1f} s (full log: {outcome.log_path})\n")
    if outcome.nothing_new:
        print(
            "No new landing file, and everything loaded before is published: every step after the ingest was "
            "skipped (`segments run --force` rebuilds anyway).\n"
        )
    if not outcome.success and (line := explain_failure(outcome.failure_text(), outcome.settings.home)):
        print(line + "\n", file=sys.stderr)
    print_summary(outcome.settings, outcome.result, warnings=warnings)
    return outcome.exit_code


def run_pipeline(
    settings: Settings,
    *,
    landing: Path | None = None,
    definition: Path | None = None,
    force: bool = False,
    wait: bool = False,
    out: TextIO | None = None,
) -> RunOutcome:
    """Run the build job (ingest, dbt, identity, quality, training, scoring, publish) for `settings` in
    this process, progress to `out` (default stdout).

    `landing` replaces the settings' landing folder; `definition` is the segment definition to train
    with (a definition given explicitly is trained even on unchanged data: it implies `force`); `force`
    runs every step even when no landing file is new; `wait`: queue behind a run holding the home instead
    of raising HomeBusy. Raises RunRefused, before anything runs, when the landing folder does not exist
    or the definition is missing or invalid."""
    from orchestration.keys import BUILD_JOB

    out = out or sys.stdout
    if landing is not None:
        settings = dataclasses.replace(
            settings, landing_dir=Path(landing).expanduser().resolve(), landing_remembered=False
        )
    remembered = " (remembered from an earlier `segments run --landing`)" if settings.landing_remembered else ""
    print(f"SEGMENTS_HOME  {settings.home}\nlanding        {settings.landing_dir}{remembered}", file=out)
    if not settings.landing_dir.is_dir():
        from warehouse.ingest import landing_without_deliveries

        raise RunRefused(landing_without_deliveries(settings.landing_dir))
    from orchestration.project import ProjectError, definition_in_use, remember_definition

    try:
        project = settings.project
    except ProjectError as err:
        raise RunRefused(str(err)) from err
    print(project.describe(), file=out)
    if definition is not None:
        definition = Path(definition).expanduser().resolve()
        _check_definition(settings, definition)
        remember_definition(project, settings.definition_state_path, definition)
    else:
        in_use = definition_in_use(project, settings.definition_state_path)
        _check_definition(settings, in_use.path)
        if in_use.source == "remembered":
            print(f"definition     {in_use.path} (remembered from an earlier `segments run --definition`)", file=out)
    _check_playbooks(project)
    if landing is not None:
        settings.ensure_dirs()
        remember_landing(settings, settings.landing_dir)
    return execute_job(
        settings, BUILD_JOB, definition=definition, force=force or definition is not None, wait=wait, out=out
    )


def _check_definition(settings: Settings, definition: Path) -> None:
    from ml.segmentation.definition import DefinitionError, load_definition
    from orchestration.project import lock_for

    if not definition.is_file():
        raise RunRefused(f"segment definition {definition} does not exist")
    try:
        load_definition(definition, lock_for(settings.project, definition))
    except (OSError, DefinitionError) as err:
        raise RunRefused(f"segment definition {definition}: {err}") from err


def _check_playbooks(project) -> None:
    from ml.segmentation.playbooks import PlaybookError, load_playbooks

    try:
        load_playbooks(project.playbooks, project.lock)
    except (OSError, PlaybookError) as err:
        raise RunRefused(f"playbooks {project.playbooks}: {err}") from err


def prepare_environment(settings: Settings) -> Settings:
    """Pin `settings` for this process and its children before anything loads (the assets read them
    back with `get_settings()`, dbt's profile reads the warehouse path, Dagster its home); create its
    folders. The variables stay set for the rest of the process."""
    if settings.project_dir is not None:
        os.environ["SEGMENTS_PROJECT"] = str(settings.project_dir)
    if settings.identity_dir is not None:
        os.environ["SEGMENTS_IDENTITY_DIR"] = str(settings.identity_dir)
    if settings.as_of:
        os.environ["SEGMENTS_AS_OF"] = settings.as_of
    else:
        os.environ.pop("SEGMENTS_AS_OF", None)
    os.environ["SEGMENTS_HOME"] = str(settings.home)
    os.environ["SEGMENTS_LANDING"] = str(settings.landing_dir)
    os.environ["SEGMENTS_GX_SAMPLE_ROWS"] = str(settings.gx_sample_rows)
    os.environ["SEGMENTS_LANDING_SETTLE_SECONDS"] = str(settings.landing_settle_seconds)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    os.environ["SEGMENTS_WAREHOUSE_PATH"] = str(settings.warehouse_path)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    # MLflow: requirements are pinned explicitly; keep its console quiet (details go to the run log).
    os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("TQDM_DISABLE", "1")
    settings.ensure_dirs()
    return settings


def step_labels(job: dg.JobDefinition) -> dict[str, str]:
    """Step key -> how the progress names the step: `[stage] ` and, for a step that runs one asset check,
    its table and check (`[ingest] audit.ingest_ledger / every_file_reconciles`), for any other
    step its key (`[training] ml__customer_segmentation`)."""
    from orchestration.keys import step_stages

    stages = step_stages(job)
    names = {node.name: node.name for node in job.graph.nodes}
    for assets_def in job.asset_layer.asset_graph.assets_defs:
        if not assets_def.is_executable or assets_def.node_def.name not in names:
            continue
        if not assets_def.keys and len(assets_def.check_keys) == 1:
            (check,) = assets_def.check_keys
            names[assets_def.node_def.name] = f"{'.'.join(check.asset_key.path)} / {check.name}"
    return {step: f"[{stages[step]}] {name}" if step in stages else name for step, name in names.items()}


class _Progress(threading.Thread):
    """Prints step starts/ends, failed checks and warnings of a run while it executes in this process,
    and keeps each step's seconds (from the event timestamps). While a step waits for a pool slot it
    says who holds the slot. After Ctrl-C or SIGTERM it gives the run `STOP_GRACE_SECONDS` to stop
    and then ends the process (`_stop_hard`)."""

    def __init__(self, instance, run_id: str, labels: Mapping[str, str], out: TextIO) -> None:
        super().__init__(daemon=True)
        self.instance, self.run_id, self.labels, self.out = instance, run_id, labels, out
        self.stop = threading.Event()
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.interrupted_at: float | None = None

    def run(self) -> None:
        cursor = None
        while not self.stop.is_set():
            cursor = self._drain(cursor)
            self._watch_interrupt()
            self.stop.wait(0.3)
        self._drain(cursor)

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _watch_interrupt(self) -> None:
        try:  # Dagster captures SIGINT (and SIGTERM) during a run and acts on it at its checkpoints
            from dagster._utils.interrupts import check_captured_interrupt
        except ImportError:  # pragma: no cover - a Dagster without it raises KeyboardInterrupt at once
            return
        if self.interrupted_at is None and (check_captured_interrupt() or _SIGNALS["received"]):
            self.interrupted_at = time.monotonic()
            self._print(
                f"  stopping: interrupted, the run stops at its next checkpoint (at most {STOP_GRACE_SECONDS:.0f} s)"
            )
        elif self.interrupted_at is not None and time.monotonic() - self.interrupted_at > STOP_GRACE_SECONDS:
            self._stop_hard()

    def _stop_hard(self) -> None:
        """Mark the run failed, free its pool slots and exit: the home lock goes with the process."""
        with contextlib.suppress(Exception):
            run = self.instance.get_run_by_id(self.run_id)
            if run is not None and not run.is_finished:
                self.instance.report_run_failed(run, "Stopped by Ctrl-C/SIGTERM: did not stop within the grace time.")
            self.instance.event_log_storage.free_concurrency_slots_for_run(self.run_id)
        self._print("  stopped: the run was marked failed; a plain `segments run` completes its work")
        os._exit(130)

    def _drain(self, cursor):
        from dagster import DagsterEventType

        from orchestration.runs import pool_holders

        try:
            conn = self.instance.get_records_for_run(self.run_id, cursor=cursor, limit=1000)
        except Exception:  # the run may not exist yet
            return cursor
        for record in conn.records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None:
                if entry.level >= logging.WARNING and entry.user_message:
                    self._print(f"      warning: {entry.user_message.strip()}")
                continue
            step = event.step_key or ""
            label = self.labels.get(step, step)
            if event.event_type == DagsterEventType.STEP_START:
                self.started[step] = entry.timestamp
                self._print(f"  ... {label}")
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                took = entry.timestamp - self.started.get(step, entry.timestamp)
                self.seconds[step] = took
                mark = "ok " if event.event_type == DagsterEventType.STEP_SUCCESS else "FAILED"
                self._print(f"  {mark} {label} ({took:.1f} s)")
                if event.event_type == DagsterEventType.STEP_FAILURE:
                    err = event.step_failure_data.error
                    while err is not None and err.cause is not None:  # the root cause, not Dagster's wrapper
                        err = err.cause
                    self._print(f"      {err.message.strip() if err else ''}")
            elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
                data = event.event_specific_data
                if not data.passed:
                    sev = data.severity.value if data.severity else "ERROR"
                    self._print(f"      check {sev.lower()}: {data.asset_key.to_user_string()} / {data.check_name}")
            elif event.event_type == DagsterEventType.ENGINE_EVENT and "blocked by limit for pool" in (
                event.message or ""
            ):
                pool = event.message.rsplit(" ", 1)[-1]
                holders = pool_holders(self.instance, pool) or ["nobody (a slot is being freed)"]
                self._print(f"      {label}: waiting for a slot of pool {pool}, held by {'; '.join(holders)}")
        return conn.cursor


# Set by our SIGTERM handler outside a Dagster run (Dagster maps SIGTERM to its own handler while it runs).
_SIGNALS = {"received": False}


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM behaves like Ctrl-C for the whole run (Dagster does the same while it executes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _SIGNALS["received"] = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _SIGNALS["received"] = False


@contextlib.contextmanager
def _long_lived_objects_frozen():
    """Keep what is alive when the run starts (every library imported so far, the definitions, the
    instance) out of the garbage collector's full collections while it runs: the run makes one after
    every warehouse step (`warehouse.connections.release_memory`, about twenty a run), and each walked
    those ~600,000 objects again (~0.4 s a collection). Unfrozen at the end, so that what the run let go
    is collected and interpreter shutdown finalizes the rest; when the caller had frozen objects itself
    (a test session: see tests/conftest.py), what is still alive is frozen again, as it left it."""
    frozen_before = gc.get_freeze_count() > 0
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        if frozen_before:
            gc.collect()
            gc.freeze()


def _reap(instance, settings: Settings, out: TextIO) -> None:
    """Clean what runs that died on this home left behind, saying so (`orchestration.runs`), and give every
    run record still open in the warehouse the outcome Dagster knows (runs launched from the UI do not
    end their record themselves)."""
    import duckdb

    from ml.model_registry import end_runs_of_dagster_runs
    from orchestration.runs import reap_dead_runs
    from warehouse.connections import connect
    from warehouse.run_records import mark_reaped, open_runs, record_end
    from warehouse.serving import clean_staging

    def settle_records(dead: list[str]) -> None:
        if not settings.warehouse_path.exists():
            return
        try:
            with connect(settings.warehouse_path) as con:
                mark_reaped(con, dead, "its process died (killed or crashed); reaped by the next run")
                for run_id in open_runs(con):
                    run = instance.get_run_by_id(run_id)
                    if run is not None and run.is_finished:
                        record_end(con, run_id, "succeeded" if run.is_success else "failed", "ended outside the CLI")
        except duckdb.IOException as err:  # a live run launched from the UI holds the warehouse: a later run does it
            print(f"note: run records not updated yet ({str(err).splitlines()[0]})", file=out)

    reaping = reap_dead_runs(
        instance,
        end_mlflow_runs=lambda ids: len(end_runs_of_dagster_runs(settings.mlflow_tracking_uri, ids)),
        mark_in_warehouse=settle_records,
        cleanup=lambda: clean_staging(settings.serving_dir),
    )
    for line in reaping.lines():
        print(line, file=out, flush=True)


def _record_end(settings: Settings, run_id: str, success: bool) -> None:
    from warehouse.connections import connect
    from warehouse.run_records import record_end

    if settings.warehouse_path.exists():
        with connect(settings.warehouse_path) as con:
            record_end(con, run_id, "succeeded" if success else "failed")


def execute_job(
    settings: Settings,
    job_name: str,
    *,
    definition: Path | None = None,
    force: bool = False,
    wait: bool = False,
    out: TextIO | None = None,
) -> RunOutcome:
    """Run the job `job_name` of the code location for `settings` in this process (the settings pinned
    first, `prepare_environment`), printing progress to `out` (default stdout) and the full dbt/Dagster
    log to `$SEGMENTS_HOME/logs/`. `definition`: the segment definition the job's training step uses;
    `force`: run every step even when no landing file is new; `wait`: queue behind another run of this
    home (else HomeBusy). Holds the home's run lock throughout and reaps dead runs first."""
    out = out or sys.stdout  # before stdout goes to the log below
    prepare_environment(settings)

    def say_waiting(holder) -> None:
        print(f"waiting: another run holds this home ({holder.describe() if holder else 'unknown'})", file=out)

    with home_lock(settings.home, wait=wait, on_wait=say_waiting), _sigterm_as_interrupt():
        return _execute_locked(settings, job_name, definition=definition, force=force, out=out)


def _execute_locked(
    settings: Settings, job_name: str, *, definition: Path | None, force: bool, out: TextIO
) -> RunOutcome:
    from dagster import DagsterInstance

    from ml.model_registry import ensure_tracking_db
    from orchestration.definitions import build_definitions
    from orchestration.defs.ingest.assets import landing_files
    from orchestration.defs.ml.assets import customer_segmentation
    from orchestration.keys import step_stages
    from orchestration.runs import run_tags

    t0 = time.monotonic()
    ensure_tracking_db(settings.mlflow_db_path)
    defs = build_definitions(settings)
    job = defs.resolve_job_def(job_name)
    nodes = {node.name for node in job.graph.nodes}
    ingest, training = landing_files.op.name, customer_segmentation.op.name
    ops: dict[str, Any] = {}
    if ingest in nodes:
        ops[ingest] = {
            "config": {
                "landing_dir": str(settings.landing_dir),
                "skip_when_unchanged": not force,
                "settle_seconds": settings.landing_settle_seconds,
            }
        }
    if definition is not None and training in nodes:
        ops[training] = {"config": {"definition_file": str(Path(definition).resolve())}}
    run_id = str(uuid.uuid4())
    log_path = settings.home / "logs" / f"run-{run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with DagsterInstance.get() as instance, _long_lived_objects_frozen():
        _reap(instance, settings, out)
        print(f"run {run_id} (definitions loaded in {time.monotonic() - t0:.1f} s)", file=out, flush=True)
        progress = _Progress(instance, run_id, step_labels(job), out)
        progress.start()
        # dbt and Dagster write their detailed logs to stdout: keep them in a file, print only progress.
        try:
            with log_path.open("w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                result = job.execute_in_process(
                    instance=instance,
                    run_id=run_id,
                    raise_on_error=False,
                    tags=run_tags(settings.landing_dir if ingest in nodes else None, force),
                    run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}, "ops": ops},
                )
        finally:
            progress.stop.set()
            progress.join()
        _record_end(settings, run_id, result.success)
    return RunOutcome(
        settings=settings,
        job_name=job_name,
        result=result,
        log_path=log_path,
        seconds=time.monotonic() - t0,
        step_seconds=dict(progress.seconds),
        step_stages=dict(step_stages(job)),
        nothing_new=result.success and ingest in nodes and not result.asset_materializations_for_node(ingest),
    )
