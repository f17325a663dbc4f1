"""Fault-injection harness: run the `segments` CLI of the checkout under test as a child process, kill it at
a stage, build demo homes, and decide whether a recovered SEGMENTS_HOME equals a clean one.

Every run is `[sys.executable, "-m", "orchestration.cli", ...]` with this checkout first on PYTHONPATH and
as cwd, in its own session (process group), with a scrubbed environment: SEGMENTS_HOME set to the home, no
variable of an earlier in-process run (DAGSTER_HOME, MLFLOW_TRACKING_URI, ...) leaking in, and TZ set
explicitly (UTC unless a scenario says otherwise). "Killing a run" is `os.killpg(pgid, SIGKILL)`: the CLI,
dbt and every other child die at once, as on a power cut or an OOM kill.

Equality of two homes (`fingerprint` + `compare`): see `compare` for the rules (state tables compared
exactly, per-run log tables by the invariants that matter).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb

from bench.output_snapshot import DOUBLE_DIGITS, SCHEMAS, VOLATILE, _table_digest

REPO = Path(__file__).resolve().parents[2]

# --- scale and patience, from the environment -------------------------------------------------------------


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def customers() -> int:
    """FAULTS_CUSTOMERS: persons of the demo the slow scenarios run on (`make test-faults`: 20,000)."""
    return env_int("FAULTS_CUSTOMERS", 20_000)


def run_timeout() -> float:
    """FAULTS_RUN_TIMEOUT: seconds a whole `segments run` may take before it counts as hung (default 15 min)."""
    return float(env_int("FAULTS_RUN_TIMEOUT", 900))


def stall_timeout() -> float:
    """FAULTS_STALL_SECONDS: seconds without a new output line before a run counts as hung (default 5 min;
    a run waiting for a pool slot a dead run holds prints nothing)."""
    return float(env_int("FAULTS_STALL_SECONDS", 300))


# --- child processes ----------------------------------------------------------------------------------------

# Variables an in-process run of this test session may have pinned (orchestration.cli.run.prepare_environment),
# and the ones a developer may have set: a child run sees only what its scenario gives it.
_SCRUBBED = re.compile(r"^(SEGMENTS_|DAGSTER_|MLFLOW_|DBT_|GX_|TZ$|PYTHONPATH$)")


def child_env(home: Path | None, *, tz: str = "UTC", extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _SCRUBBED.match(k)}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "TZ": tz,
            "GX_ANALYTICS_ENABLED": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "TQDM_DISABLE": "1",
        }
    )
    if home is not None:
        env["SEGMENTS_HOME"] = str(home)
    env.update(extra or {})
    return env


@dataclasses.dataclass
class Line:
    at: float  # time.monotonic()
    stream: str  # stdout | stderr
    text: str


@dataclasses.dataclass
class Outcome:
    """How a child run ended: its exit code (None when it hung and was killed), why, and how long it took."""

    args: list[str]
    returncode: int | None
    seconds: float
    hung: str | None  # why it was declared hung, None when it exited by itself
    killed: bool  # killed by the harness on purpose (kill-at-stage)
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.hung

    def tail(self, n: int = 40) -> str:
        out = "\n".join(self.stdout.splitlines()[-n:])
        err = "\n".join(self.stderr.splitlines()[-n:])
        return f"--- stdout (tail) ---\n{out}\n--- stderr (tail) ---\n{err}"

    def lines(self) -> list[str]:
        return self.stdout.splitlines() + self.stderr.splitlines()

    def describe(self) -> str:
        if self.hung:
            return f"hung ({self.hung})"
        if self.killed:
            return f"killed after {self.seconds:.1f} s"
        return f"exit {self.returncode} after {self.seconds:.1f} s"


class Cli:
    """One `python -m orchestration.cli ARGS` child in its own process group, its output read line by line."""

    def __init__(self, args: list[str], *, home: Path | None, tz: str = "UTC", env: dict[str, str] | None = None):
        self.args = list(args)
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "orchestration.cli", *self.args],
            cwd=REPO,
            env=child_env(home, tz=tz, extra=env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self._lines: list[Line] = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, "stderr"), daemon=True),
        ]
        for t in self._readers:
            t.start()
        self.killed = False

    def _read(self, stream, name: str) -> None:
        for text in stream:
            with self._cond:
                self._lines.append(Line(time.monotonic(), name, text.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def last_output(self) -> float:
        with self._cond:
            return self._lines[-1].at if self._lines else self.started

    def text(self, stream: str) -> str:
        with self._cond:
            return "\n".join(line.text for line in self._lines if line.stream == stream)

    def wait_line(self, predicate: Callable[[str], bool], timeout: float) -> Line | None:
        """The first output line (either stream) for which `predicate` holds, waiting up to `timeout` s;
        None when the process exited or the time ran out first."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self._lines[seen:]:
                    if predicate(line.text):
                        return line
                seen = len(self._lines)
                if self.popen.poll() is not None and not any(t.is_alive() for t in self._readers):
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.2))

    def wait_probe(self, probe: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
        """Poll `probe()` until it holds (True), the process exits or `timeout` s pass (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.popen.poll() is None:
            if probe():
                return True
            time.sleep(every)
        return False

    def kill(self) -> None:
        """SIGKILL to the whole process group (the CLI and every child it started)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.killed = True

    def wait(self, timeout: float | None = None, stall: float | None = None) -> Outcome:
        """Wait for the exit; a run still going after `timeout` s, or silent for `stall` s, is declared hung
        and killed (its process group)."""
        timeout = run_timeout() if timeout is None else timeout
        stall = stall_timeout() if stall is None else stall
        hung = None
        while self.popen.poll() is None:
            now = time.monotonic()
            if now - self.started > timeout:
                hung = f"still running after {timeout:.0f} s"
            elif now - self.last_output > stall:
                hung = f"no output for {stall:.0f} s"
            if hung:
                last = self._lines[-1].text.strip() if self._lines else "(no output)"
                hung += f"; last line: {last!r}"
                self.kill()
                self.killed = False
                break
            time.sleep(0.2)
        self.popen.wait()
        seconds = time.monotonic() - self.started
        for t in self._readers:
            t.join(timeout=10)
        return Outcome(
            args=self.args,
            returncode=None if hung else self.popen.returncode,
            seconds=seconds,
            hung=hung,
            killed=self.killed,
            stdout=self.text("stdout"),
            stderr=self.text("stderr"),
        )

    def __enter__(self) -> Cli:
        return self

    def __exit__(self, *exc) -> None:
        if self.popen.poll() is None:
            self.kill()
            self.popen.wait()


def segments(
    args: list[str], *, home: Path | None, tz: str = "UTC", env: dict[str, str] | None = None, **wait
) -> Outcome:
    """Run `segments ARGS` to its end (or until declared hung)."""
    with Cli(args, home=home, tz=tz, env=env) as cli:
        return cli.wait(**wait)


def run_args(home: Path, *extra: str) -> list[str]:
    """`segments run --landing HOME/demo/landing` (the plain run and the recovery command)."""
    return ["run", "--landing", str(landing_of(home)), *extra]


def stage_start(stage: str) -> Callable[[str], bool]:
    """The progress line of the first step of `stage` starting: `  ... [stage] ...`."""
    return lambda text: text.startswith(f"  ... [{stage}]")


def step_ok(label: str) -> Callable[[str], bool]:
    """The progress line of a step that succeeded, e.g. `  ok  [ingest] landing_files (0.7 s)`."""
    return lambda text: text.startswith(f"  ok  {label}")


def mlflow_run_open(home: Path) -> Callable[[], bool]:
    """A probe: an MLflow run of `home` is RUNNING (the training step is logging its model)."""
    db = home / "mlflow.db"

    def probe() -> bool:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
            try:
                return con.execute("select count(*) from runs where status = 'RUNNING'").fetchone()[0] > 0
            finally:
                con.close()
        except sqlite3.Error:
            return False

    return probe


@dataclasses.dataclass
class Killed:
    trigger: str  # what the kill waited for
    after: float  # seconds from the start of the run to the kill
    outcome: Outcome


def run_and_kill(
    home: Path,
    trigger: Callable[[str], bool],
    *,
    delay: float = 0.0,
    probe: Callable[[Path], Callable[[], bool]] | None = None,
    tz: str = "UTC",
) -> Killed:
    """Start `segments run` on `home` and SIGKILL its process group `delay` s after the first output line
    matching `trigger` - or, with `probe`, after that line as soon as `probe(home)()` holds. Fails
    (AssertionError) when the run ends or hangs before that."""
    with Cli(run_args(home), home=home, tz=tz) as cli:
        line = cli.wait_line(trigger, timeout=run_timeout())
        reached = line is not None and cli.popen.poll() is None
        what = line.text.strip() if line else "the trigger line"
        if reached and probe is not None:
            reached = cli.wait_probe(probe(home), timeout=run_timeout())
            what += f", then {getattr(probe, '__name__', 'the probe')}"
        if not reached:
            outcome = cli.wait(timeout=5, stall=5)
            raise AssertionError(
                f"the run ended before the kill point ({what}): {outcome.describe()}\n{outcome.tail()}"
            )
        if delay:
            time.sleep(delay)
        after = time.monotonic() - cli.started
        cli.kill()
        return Killed(what, after, cli.wait(timeout=60, stall=60))


# --- homes and deliveries -----------------------------------------------------------------------------------


def landing_of(home: Path) -> Path:
    return home / "demo" / "landing"


def landing_files(landing: Path) -> list[str]:
    """Every file under `landing`, relative paths, sorted."""
    return sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file())


def backdate(paths: Iterable[Path], seconds: float = 120.0) -> None:
    """Set mtime (and atime) `seconds` into the past: a delivery that finished arriving a while ago, so a
    settle window of the ingest (SEGMENTS_LANDING_SETTLE_SECONDS) never holds it back."""
    when = time.time() - seconds
    for p in paths:
        os.utime(p, (when, when))


def copy_delivery(src_landing: Path, dst_landing: Path, files: Iterable[str]) -> None:
    """Copy landing files (relative paths), keeping their mtimes."""
    for rel in files:
        (dst_landing / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src_landing / rel, dst_landing / rel)


def copy_home(src: Path, dst: Path) -> Path:
    """A copy of a SEGMENTS_HOME at `dst` that runs on its own: copytree, then every absolute path of `src`
    in MLflow's SQLite (experiment artifact locations, run artifact URIs, model version storage locations)
    rewritten to `dst`, so a run on the copy never writes into, or reads from, the original."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    shutil.copytree(src, dst, symlinks=True)
    db = dst / "mlflow.db"
    if db.exists():
        relocate_sqlite(db, str(src), str(dst))
    return dst


def relocate_sqlite(db: Path, old: str, new: str) -> None:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            for _, column, type_, *_ in con.execute(f'pragma table_info("{table}")').fetchall():
                if any(t in (type_ or "").upper() for t in ("CHAR", "TEXT", "CLOB")) or not type_:
                    con.execute(
                        f'update "{table}" set "{column}" = replace("{column}", ?, ?) '
                        f'where typeof("{column}") = \'text\' and instr("{column}", ?) > 0',
                        [old, new, old],
                    )
        con.commit()
    finally:
        con.close()


def du(path: Path) -> int:
    """Bytes allocated under `path` (what a tmpfs counts)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total


# --- tmpfs ----------------------------------------------------------------------------------------------------


class MountNotPermitted(Exception):
    pass


def mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise MountNotPermitted(f"mount {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")


@contextlib.contextmanager
def tmpfs(path: Path, size_bytes: int):
    """A tmpfs of `size_bytes` mounted on `path` (root only; MountNotPermitted elsewhere), unmounted after."""
    if shutil.which("mount") is None:
        raise MountNotPermitted("no mount command")
    path.mkdir(parents=True, exist_ok=True)
    mount("-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def remount(path: Path, options: str) -> None:
    mount("-o", f"remount,{options}", str(path))


# --- what a home holds ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PerRunLog:
    """A table with rows per run (or attempt) of the pipeline: `run` names the run id column, `order` the
    column that orders runs. Compared by the set of distinct per-run contents and by the latest run's
    content (a retried run may log the same content again; it may not log different content)."""

    run: str
    order: str
    columns: tuple[str, ...] | None = None  # the columns compared (default: every non-volatile one)
    where: str = "true"


# Tables that log each run or attempt instead of holding state. Everything else in the warehouse is state and
# must equal the clean run's exactly (modulo the volatile columns of bench.output_snapshot).
PER_RUN_LOGS: dict[str, PerRunLog] = {
    # one row per identity run: a recovery may resolve again (same result, no merges, no splits)
    "identity.resolution_runs": PerRunLog(
        "run_id", "resolved_at", ("is_applied", "records", "customers", "max_cluster_size"), "is_applied"
    ),
    # one row per scoring run, profiles per scoring run: a recovery may score again with the same champion
    "ml.segment_scoring_runs": PerRunLog("dagster_run_id", "scored_at"),
    "staging.stg_ml__segment_scoring_runs": PerRunLog("dagster_run_id", "scored_at"),
    "ml.segment_profiles": PerRunLog("dagster_run_id", "profiled_at"),
    "staging.stg_ml__segment_profiles": PerRunLog("dagster_run_id", "profiled_at"),
    "segments.segment_profiles": PerRunLog("dagster_run_id", "profiled_at"),
}
# The transition matrix of every scoring run after the first, diagonal included: a recovery that scores again
# adds a matrix without moves. Compared on the moves only (each move recorded exactly once).
MOVES_ONLY = {"segments.segment_transitions": "is_move"}
# Compared separately: the ledger (each file loaded exactly once) and the warehouse's record of pipeline runs
# (one row per run that reached the ingest, with its outcome: a recovered home has rows of dead runs, `reaped`).
SPECIAL = {"audit.ingest_ledger", "audit.pipeline_runs"}
SERVING_SCHEMAS = ("reporting", "segments")
MLFLOW_METRICS = ("silhouette", "stability_ari", "min_segment_share", "surrogate_fidelity", "davies_bouldin")
LIVE_DAGSTER_STATUSES = {"STARTED", "STARTING", "QUEUED", "NOT_STARTED", "CANCELING"}


def _columns(con, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, table],
    ).fetchall()


def _row_hash_expr(columns: list[tuple[str, str]]) -> str:
    exprs = [
        f'round("{c}", {DOUBLE_DIGITS})::varchar' if t in ("DOUBLE", "FLOAT", "REAL") else f'"{c}"::varchar'
        for c, t in columns
    ]
    if not exprs:
        return "md5('')"
    return "md5(concat_ws('\x1f', " + ", ".join(f"coalesce({e}, '\x00')" for e in exprs) + "))"


def _per_run(con, name: str, spec: PerRunLog) -> dict:
    schema, table = name.split(".")
    cols = _columns(con, schema, table)
    kept = [(c, t) for c, t in cols if (c in spec.columns if spec.columns else not VOLATILE.search(c))]
    rows = con.execute(
        f"select {spec.run}, max({spec.order}) as run_at, md5(string_agg(h, '' order by h)), count(*) "
        f'from (select {spec.run}, {spec.order}, {_row_hash_expr(kept)} as h from "{schema}"."{table}" '
        f"where {spec.where}) group by 1 order by run_at, 1"
    ).fetchall()
    return {
        "runs": len(rows),
        "distinct": sorted({d for _, _, d, _ in rows}),
        "latest": rows[-1][2] if rows else None,
        "latest_rows": rows[-1][3] if rows else 0,
        "rows_per_run": [n for *_, n in rows],
    }


def _ledger(con) -> dict:
    loaded = con.execute(
        "select source_table, source_file, file_sha256, rows_read, rows_loaded, rows_quarantined, rows_already_loaded "
        "from audit.ingest_ledger where status = 'loaded' order by all"
    ).fetchall()
    statuses = dict(con.execute("select status, count(*) from audit.ingest_ledger group by 1").fetchall())
    return {"loaded": [list(r) for r in loaded], "statuses": statuses}


def _pipeline_runs(con) -> dict:
    """audit.pipeline_runs: outcomes by count, runs without an outcome, the latest run's outcome."""
    outcomes = dict(
        con.execute("select coalesce(outcome, '(none)'), count(*) from audit.pipeline_runs group by 1").fetchall()
    )
    last = con.execute("select outcome from audit.pipeline_runs order by run_seq desc limit 1").fetchone()
    return {"outcomes": outcomes, "last": last[0] if last else None}


def _tables(con, schemas: Iterable[str]) -> list[tuple[str, str]]:
    return con.execute(
        "select table_schema, table_name from information_schema.tables where table_schema in "
        f"({', '.join(repr(s) for s in schemas)}) order by 1, 2"
    ).fetchall()


def _digests(con, tables: Iterable[tuple[str, str]]) -> tuple[dict, dict]:
    """(state, logs) of `tables` (SPECIAL ones left out): a digest per state table (MOVES_ONLY ones on their
    moves), the per-run contents of every PER_RUN_LOGS table."""
    state, logs = {}, {}
    for schema, table in tables:
        name = f"{schema}.{table}"
        if name in SPECIAL:
            continue
        if name in PER_RUN_LOGS:
            logs[name] = _per_run(con, name, PER_RUN_LOGS[name])
        elif name in MOVES_ONLY:
            state[f"{name} [{MOVES_ONLY[name]}]"] = _filtered_digest(con, schema, table, MOVES_ONLY[name])
        else:
            state[name] = _table_digest(con, schema, table)
    return state, logs


def _warehouse(path: Path) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = _tables(con, SCHEMAS)
        state, logs = _digests(con, tables)
        ledger = _ledger(con) if ("audit", "ingest_ledger") in tables else {"loaded": [], "statuses": {}}
        runs = _pipeline_runs(con) if ("audit", "pipeline_runs") in tables else None
        return {"state": state, "logs": logs, "ledger": ledger, "pipeline_runs": runs}
    finally:
        con.close()


def _filtered_digest(con, schema: str, table: str, where: str) -> dict:
    kept = [(c, t) for c, t in _columns(con, schema, table) if not VOLATILE.search(c)]
    rows, digest = con.execute(
        "select count(*), md5(coalesce(string_agg(h, '' order by h), '')) "
        f'from (select {_row_hash_expr(kept)} as h from "{schema}"."{table}" where {where})'
    ).fetchone()
    return {"rows": rows, "digest": digest}


def _serving(home: Path) -> dict:
    """The published BI copy, state and per-run logs in one mapping (`compare` tells them apart by name)."""
    bi = home / "serving" / "bi.duckdb"
    if not bi.exists():
        return {}
    con = duckdb.connect(str(bi), read_only=True)
    try:
        state, logs = _digests(con, _tables(con, SERVING_SCHEMAS))
        return {**state, **logs}
    finally:
        con.close()


def _mlflow(db: Path) -> dict:
    if not db.exists():
        return {"runs": {}, "versions": {}, "aliases": {}}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        runs = dict(Counter(s for (s,) in con.execute("select status from runs where lifecycle_stage = 'active'")))
        status = dict(con.execute("select run_uuid, status from runs").fetchall())
        versions = {}
        for name, version, run_id in con.execute("select name, version, run_id from model_versions"):
            metrics = dict(
                con.execute(
                    f"select key, round(value, {DOUBLE_DIGITS}) from latest_metrics where run_uuid = ? and key in "
                    f"({', '.join('?' * len(MLFLOW_METRICS))})",
                    [run_id, *MLFLOW_METRICS],
                ).fetchall()
            )
            params = dict(
                con.execute("select key, value from params where run_uuid = ? and key in ('algorithm', 'k')", [run_id])
            )
            versions[f"{name}/{version}"] = {
                "run_status": status.get(run_id),
                **params,
                **dict(sorted(metrics.items())),
            }
        aliases = {
            f"{n}@{a}": str(v) for n, a, v in con.execute("select name, alias, version from registered_model_aliases")
        }
        return {"runs": runs, "versions": versions, "aliases": aliases}
    finally:
        con.close()


def _dagster(dagster_home: Path) -> dict:
    """Dagster runs (job, status) oldest first, the latest verdict of every asset check, and the claimed
    slots of the warehouse pool."""
    import dagster as dg

    if not (dagster_home / "dagster.yaml").exists():
        return {"runs": [], "checks": {}, "claimed_slots": 0}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = list(reversed(instance.get_runs()))
        checks: dict[str, str] = {}
        for run in runs:  # oldest first: a later verdict of a check replaces an earlier one
            for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
                data = entry.dagster_event.event_specific_data
                verdict = "passed" if data.passed else (data.severity.value.lower() if data.severity else "error")
                checks[f"{data.asset_key.to_user_string()} / {data.check_name}"] = verdict
        claimed = 0
        with contextlib.suppress(Exception):
            info = instance.event_log_storage.get_concurrency_info("warehouse")
            claimed = len(info.claimed_slots)
        return {
            "runs": [[run.job_name, run.status.value, run.run_id] for run in runs],
            "checks": dict(sorted(checks.items())),
            "claimed_slots": claimed,
        }


def fingerprint(home: Path) -> dict:
    """Everything `compare` needs of a SEGMENTS_HOME (a JSON-able dict)."""
    home = Path(home)
    return {
        "warehouse": _warehouse(home / "warehouse.duckdb"),
        "serving": _serving(home),
        "mlflow": _mlflow(home / "mlflow.db"),
        "dagster": _dagster(home / "dagster"),
    }


def compare(clean: dict, recovered: dict) -> list[str]:
    """Differences between a clean home and a recovered one (empty when the recovery is correct).

    State - compared exactly (row count and an order-independent digest of every non-volatile column, as
    `bench/output_snapshot.py` computes it: run ids, timestamps of the run, file paths left out):
      * every warehouse table and view of the snapshot's schemas (raw, reference, staging, intermediate,
        marts, identity, ml, segments, audit.quarantine), except the per-run logs below. This includes
        identity.review_queue (each delivery's resolution lists its review items once: a recovery that keeps
        a dead run's items and lists them again fails), ml.segment_membership_history and the outbox
        (segment_actions, segment_alerts: exactly once), marts.customer_features_history;
      * segments.segment_transitions on its moves (is_move) only, see MOVES_ONLY;
      * the published BI copy (serving/bi.duckdb, schemas reporting and segments), same rules;
      * the MLflow registry: every model version whose training run FINISHED (params k/algorithm, gate
        metrics) and every alias -> version (one champion, the same version number: a recovery that
        retrains makes a new version and fails); versions of runs that did not finish (a killed training) are
        left out;
      * the latest verdict of every asset check (a recovery evaluates again what a killed run left undone).
    Per-run logs (PER_RUN_LOGS: identity.resolution_runs, scoring runs, segment profiles per scoring run) -
      a recovery may add runs: the set of distinct per-run contents and the latest run's content must equal.
    audit.ingest_ledger - attempts are logged (a failed attempt, e.g. on a full disk, may stay): every file is
      loaded exactly once (one `loaded` row per table and SHA-256) and the loaded rows (table, file, hash,
      rows read/loaded/quarantined/already loaded) equal the clean run's.
    audit.pipeline_runs - one row per run (a dead run's row stays, outcome `reaped`): not compared with the
      clean home; every run has an outcome and the latest one succeeded.
    Invariants of the recovered home alone: no MLflow run left RUNNING, no Dagster run left live
    (STARTED, STARTING, QUEUED, NOT_STARTED, CANCELING), no slot of the warehouse pool claimed, the
    pipeline_runs rule above.
    """
    diffs: list[str] = []
    cw, rw = clean["warehouse"], recovered["warehouse"]
    for name in sorted(set(cw["state"]) | set(rw["state"])):
        c, r = cw["state"].get(name), rw["state"].get(name)
        if c is None or r is None:
            diffs.append(f"table {name}: only in the {'recovered' if c is None else 'clean'} home")
        elif (c["rows"], c["digest"]) != (r["rows"], r["digest"]):
            diffs.append(f"table {name}: {r['rows']} rows (clean: {c['rows']}), digest differs")
    for name in sorted(set(cw["logs"]) | set(rw["logs"])):
        diffs += _compare_log(f"log {name}", cw["logs"].get(name), rw["logs"].get(name))
    diffs += _compare_ledger(cw["ledger"], rw["ledger"])
    cs, rs = clean["serving"], recovered["serving"]
    for name in sorted(set(cs) | set(rs)):
        c, r = cs.get(name), rs.get(name)
        if name in PER_RUN_LOGS:
            diffs += _compare_log(f"serving {name}", c, r)
        elif c is None or r is None:
            diffs.append(f"serving {name}: only in the {'recovered' if c is None else 'clean'} home")
        elif (c["rows"], c["digest"]) != (r["rows"], r["digest"]):
            diffs.append(f"serving {name}: {r['rows']} rows (clean: {c['rows']}), digest differs")
    diffs += _compare_mlflow(clean["mlflow"], recovered["mlflow"])
    cd, rd = clean["dagster"], recovered["dagster"]
    if cd["checks"] != rd["checks"]:
        changed = {k: (cd["checks"].get(k), rd["checks"].get(k)) for k in set(cd["checks"]) | set(rd["checks"])}
        changed = {k: v for k, v in sorted(changed.items()) if v[0] != v[1]}
        diffs.append(f"latest check verdicts (clean, recovered): {changed}")
    diffs += invariants(recovered)
    return diffs


def _compare_log(label: str, c: dict | None, r: dict | None) -> list[str]:
    if c is None or r is None:
        return [f"{label}: only in the {'recovered' if c is None else 'clean'} home"]
    out = []
    if c["distinct"] != r["distinct"]:
        extra = len(set(r["distinct"]) - set(c["distinct"]))
        missing = len(set(c["distinct"]) - set(r["distinct"]))
        out.append(
            f"{label}: per-run contents differ ({extra} not in the clean home, {missing} missing; "
            f"runs {r['runs']} vs clean {c['runs']}, rows per run {r['rows_per_run']} vs {c['rows_per_run']})"
        )
    elif c["latest"] != r["latest"]:
        out.append(f"{label}: the latest run's content differs ({r['latest_rows']} rows vs clean {c['latest_rows']})")
    return out


def _compare_ledger(c: dict, r: dict) -> list[str]:
    out = []
    keys = Counter((row[0], row[2]) for row in r["loaded"])
    twice = sorted(f"{t} {sha[:12]}" for (t, sha), n in keys.items() if n > 1)
    if twice:
        out.append(f"ingest ledger: loaded more than once: {twice}")
    if sorted(map(tuple, c["loaded"])) != sorted(map(tuple, r["loaded"])):
        cl, rl = set(map(tuple, c["loaded"])), set(map(tuple, r["loaded"]))
        out.append(
            f"ingest ledger: loaded files differ: only recovered {sorted(rl - cl)}, only clean {sorted(cl - rl)}"
        )
    return out


def _compare_mlflow(c: dict, r: dict) -> list[str]:
    out = []
    finished = {k: v for k, v in r["versions"].items() if v["run_status"] == "FINISHED"}
    clean_finished = {k: v for k, v in c["versions"].items() if v["run_status"] == "FINISHED"}
    if finished != clean_finished:
        out.append(f"mlflow versions (finished runs): {json.dumps(finished)} != clean {json.dumps(clean_finished)}")
    if c["aliases"] != r["aliases"]:
        out.append(f"mlflow aliases: {r['aliases']} != clean {c['aliases']}")
    return out


def invariants(fp: dict) -> list[str]:
    """What must hold in any home after a run ends, whatever happened before."""
    out = []
    running = fp["mlflow"]["runs"].get("RUNNING", 0)
    if running:
        out.append(f"mlflow: {running} run(s) left RUNNING")
    live = [
        f"{job} {status} {run_id}" for job, status, run_id in fp["dagster"]["runs"] if status in LIVE_DAGSTER_STATUSES
    ]
    if live:
        out.append(f"dagster: run(s) left live: {live}")
    if fp["dagster"]["claimed_slots"]:
        out.append(f"dagster: {fp['dagster']['claimed_slots']} slot(s) of pool 'warehouse' still claimed")
    runs = fp["warehouse"].get("pipeline_runs")
    if runs is not None:
        if runs["outcomes"].get("(none)"):
            out.append(f"audit.pipeline_runs: {runs['outcomes']['(none)']} run(s) without an outcome")
        if runs["last"] != "succeeded":
            out.append(f"audit.pipeline_runs: the latest run's outcome is {runs['last']!r}, not 'succeeded'")
    champions = [a for a in fp["mlflow"]["aliases"] if a.endswith("@champion")]
    if len(champions) > 1:
        out.append(f"mlflow: more than one champion alias {champions}")
    return out


# --- timings of the recovery commands -----------------------------------------------------------------------------


@dataclasses.dataclass
class Record:
    """One scenario's row of the closing table."""

    scenario: str
    fault: str
    recovery: str  # the recovery command
    seconds: float | None  # wall time of the recovery command
    outcome: str  # what the recovery did (exit code / hung)
    verdict: str = "?"  # pass | FAIL: reason

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def format_table(records: list[Record], scale: int) -> str:
    head = f"Fault scenarios at {scale:,} persons (recovery = a plain `segments run` on the same home)"
    rows = [("scenario", "fault", "recovery command", "time", "verdict")]
    for r in records:
        secs = "-" if r.seconds is None else f"{r.seconds:.1f} s"
        rows.append((r.scenario, r.fault, r.recovery, secs, r.verdict))
    widths = [min(max(len(row[i]) for row in rows), 100) for i in range(4)]
    lines = [head]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(w)[: max(w, 1)] for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )
    return "\n".join(lines)
