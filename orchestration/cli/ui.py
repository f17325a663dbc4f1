"""`segments ui`: the Dagster UI, the MLflow UI and the reports on this machine, stopped together.

The reports (segment reports of the publications, validation reports of the runs) are served by this process
on --reports-port (`orchestration.cli.report.ReportsHandler`): the links in Dagster's metadata point there.

Each UI starts in a session (process group) of its own, and `segments ui` stops them on Ctrl-C or SIGTERM:
first SIGTERM to each whole group (`dagster dev` with its webserver, daemon, code server and the run workers
they started; MLflow with its server workers), then, after a grace time, SIGKILL to whatever of the process
tree is still alive, including a process that left its group. Nothing it started outlives it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from orchestration.cli.run import prepare_environment
from orchestration.settings import (
    DAGSTER_UI_URL_VAR,
    MLFLOW_UI_URL_VAR,
    PROJECT_ROOT,
    REPORTS_URL_VAR,
    get_settings,
)

STOP_GRACE_SECONDS = 20.0


def add_parser(sub) -> None:
    u = sub.add_parser("ui", help="start the Dagster and MLflow UIs")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--dagster-port", type=int, default=3000)
    u.add_argument("--mlflow-port", type=int, default=5000)
    u.add_argument("--reports-port", type=int, default=3001, help="the segment and validation reports")
    u.set_defaults(func=cmd_ui)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def descendants(root: int) -> set[int]:
    """Every live process whose parent chain reaches `root` (read from /proc; empty where there is none)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_process_groups(procs: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group of each of `procs` (each started with `start_new_session=True`), wait up to
    `grace` seconds for them and every process they started, then SIGKILL what is left."""
    tree = {p.pid for p in procs if p.poll() is None}
    for p in procs:
        tree |= descendants(p.pid)
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    while time.monotonic() < deadline and any(_alive(pid) for pid in tree):
        time.sleep(0.2)
    for pid in tree:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)


def cmd_ui(args: argparse.Namespace) -> int:
    from ml.model_registry import ensure_tracking_db

    settings = prepare_environment(get_settings())
    ensure_tracking_db(settings.mlflow_db_path)
    from orchestration.cli.report import reports_server

    dagster_url, mlflow_url = f"http://{args.host}:{args.dagster_port}", f"http://{args.host}:{args.mlflow_port}"
    reports_url = f"http://{args.host}:{args.reports_port}"
    # the links runs launched from this UI put in Dagster metadata and MLflow tags
    os.environ[DAGSTER_UI_URL_VAR], os.environ[MLFLOW_UI_URL_VAR] = dagster_url, mlflow_url
    os.environ[REPORTS_URL_VAR] = reports_url
    try:
        reports = reports_server(settings, args.host, args.reports_port)
    except OSError as err:
        print(f"error: cannot serve the reports on {reports_url}: {err.strerror or err}", file=sys.stderr)
        return 2
    threading.Thread(target=reports.serve_forever, daemon=True).start()
    bin_dir = Path(sys.executable).parent
    dagster = [str(bin_dir / "dagster"), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    mlflow = [str(bin_dir / "mlflow"), "ui", "--backend-store-uri", settings.mlflow_tracking_uri]
    # Stop both UIs on Ctrl-C and on SIGTERM alike.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            subprocess.Popen(
                [*dagster, "-h", args.host, "-p", str(args.dagster_port)], cwd=PROJECT_ROOT, start_new_session=True
            )
        )
        procs.append(
            subprocess.Popen(
                [*mlflow, "--host", args.host, "--port", str(args.mlflow_port)],
                start_new_session=True,
                # MLflow 3's server starts seven job-runner processes for GenAI jobs this project has none of
                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )
        )
        print(
            f"Dagster UI: {dagster_url}   MLflow UI: {mlflow_url}   reports: {reports_url}/segments/current/report.html"
            "   (Ctrl-C stops them all)",
            flush=True,
        )
        for p in procs:
            p.wait()
    except KeyboardInterrupt:
        pass
    finally:
        # a second Ctrl-C while stopping must not leave the rest running
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_process_groups(procs)
        reports.shutdown()
        reports.server_close()
    return 0
