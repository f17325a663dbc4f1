"""A full run launched from the Dagster UI against the same run from the command line, on one home.

Issue 21: a run launched from the UI took 635 s where `segments run` took 267 s (every step started its own
process). This starts `segments ui` on free ports, launches the build job through the webserver's GraphQL API
(what the launchpad's button does: the job's default run config, with `skip_when_unchanged: false` so that
every step runs, like `segments run --force`), waits for it, then times `segments run --force` on the same
home, alternating `--rounds` times. Both runs do the same work on the same loaded data: every file is
already in the ledger, so each rebuilds everything downstream of the ingest.

    python -m bench.ui_launch --home H [--rounds 2]

The home must hold a pipeline that ran once (`segments run --landing DIR`): its landing folder is remembered.
Prints each round and the ratio of the medians (UI / CLI).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from orchestration.keys import BUILD_JOB, CODE_LOCATION


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - the UI this bench started on 127.0.0.1
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def _wait_for_code_location(port: int, timeout: float) -> None:
    """Until the webserver has loaded the code location: what a user waits for before the launch button works."""
    query = json.dumps({"query": "{workspaceOrError{... on Workspace{locationEntries{name loadStatus}}}}"}).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own UI on 127.0.0.1
            entries = json.loads(response.read())["data"]["workspaceOrError"]["locationEntries"]
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            return
        time.sleep(1)
    raise TimeoutError(f"the code location did not load within {timeout:.0f} s")


def launch_from_ui(port: int, timeout: float = 3600) -> tuple[float, str]:
    """Launch the build job through the webserver on `port` as the launchpad does, with every step forced;
    seconds from the launch to the run's end, and its status."""
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    # the launchpad's default config of the job (the landing folder the deployment uses), forced
    config = {"ops": {"landing_files": {"config": {"skip_when_unchanged": False}}}}
    t0 = time.monotonic()
    run_id = client.submit_job_execution(BUILD_JOB, repository_location_name=CODE_LOCATION, run_config=config)
    status = ""
    while time.monotonic() - t0 < timeout:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(0.5)
    return time.monotonic() - t0, status


def run_from_cli(env: dict[str, str]) -> tuple[float, int]:
    t0 = time.monotonic()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("segments")), "run", "--force"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.monotonic() - t0, done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    env = {**os.environ, "SEGMENTS_HOME": str(args.home.resolve())}
    env.pop("SEGMENTS_LANDING", None)
    ui_seconds, cli_seconds = [], []
    for round_ in range(1, args.rounds + 1):
        dagster_port, mlflow_port = _free_port(), _free_port()
        ui = subprocess.Popen(
            [str(Path(sys.executable).with_name("segments")), "ui"]
            + ["--dagster-port", str(dagster_port), "--mlflow-port", str(mlflow_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(f"http://127.0.0.1:{dagster_port}/server_info", 300)
            _wait_for_code_location(dagster_port, 300)
            seconds, status = launch_from_ui(dagster_port)
        finally:
            ui.send_signal(signal.SIGTERM)
            ui.wait(timeout=120)
        print(f"round {round_}: UI launch {seconds:.1f} s ({status})", flush=True)
        ui_seconds.append(seconds)
        seconds, code = run_from_cli(env)
        print(f"round {round_}: segments run --force {seconds:.1f} s (exit {code})", flush=True)
        cli_seconds.append(seconds)
    ui_median, cli_median = statistics.median(ui_seconds), statistics.median(cli_seconds)
    print(f"median: UI {ui_median:.1f} s, CLI {cli_median:.1f} s, ratio UI/CLI {ui_median / cli_median:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
