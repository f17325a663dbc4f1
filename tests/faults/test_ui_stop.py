"""`segments ui` stopped by SIGTERM leaves no process behind: not Dagster's webserver, daemon or code
server (which `dagster dev` starts as children), not MLflow's server. Issue 21 reports them left running
after a SIGTERM; with both UIs idle this test passes on the current code (Dagster 1.13 here), so the leak
needs more than an idle UI to show (a launched run?). Slow (both UIs start for real, ~50-65 s): in the fault
suite, `make test-faults`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(root: int) -> set[int]:
    """Every process whose parent chain reaches `root` (read from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_every_process_the_uis_started(tmp_path):
    dagster_port, mlflow_port = _free_port(), _free_port()
    env = {**os.environ, "SEGMENTS_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "orchestration.cli", "ui", "--dagster-port", str(dagster_port)]
    ui = subprocess.Popen([*command, "--mlflow-port", str(mlflow_port)], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        up = set()
        while time.monotonic() < deadline and len(up) < 2:
            for port in {dagster_port, mlflow_port} - up:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)  # noqa: S310 (localhost)
                    up.add(port)
                except OSError:
                    pass
            time.sleep(1)
        assert up == {dagster_port, mlflow_port}, "the UIs did not come up"
        started = _descendants(ui.pid)
        assert len(started) >= 4  # dagster dev + webserver + daemon + code server, mlflow server
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in started):
            time.sleep(0.2)
        assert not [p for p in started if _alive(p)]
    finally:
        if ui.poll() is None:
            ui.kill()
