"""`segments ui`: the Dagster UI and the MLflow UI on this machine, stopped together."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from orchestration.cli.run import prepare_environment
from orchestration.settings import PROJECT_ROOT, get_settings


def add_parser(sub) -> None:
    u = sub.add_parser("ui", help="start the Dagster and MLflow UIs")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--dagster-port", type=int, default=3000)
    u.add_argument("--mlflow-port", type=int, default=5000)
    u.set_defaults(func=cmd_ui)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_ui(args: argparse.Namespace) -> int:
    from ml.model_registry import ensure_tracking_db

    settings = prepare_environment(get_settings())
    ensure_tracking_db(settings.mlflow_db_path)
    bin_dir = Path(sys.executable).parent
    procs = [
        subprocess.Popen(
            [
                str(bin_dir / "dagster"),
                "dev",
                "-w",
                str(PROJECT_ROOT / "workspace.yaml"),
                "-h",
                args.host,
                "-p",
                str(args.dagster_port),
            ],
            cwd=PROJECT_ROOT,
        ),
        subprocess.Popen(
            [
                str(bin_dir / "mlflow"),
                "ui",
                "--backend-store-uri",
                settings.mlflow_tracking_uri,
                "--host",
                args.host,
                "--port",
                str(args.mlflow_port),
            ]
        ),
    ]
    # Stop both UIs on Ctrl-C and on SIGTERM alike.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    print(
        f"Dagster UI: http://{args.host}:{args.dagster_port}   "
        f"MLflow UI: http://{args.host}:{args.mlflow_port}   (Ctrl-C stops both)"
    )
    try:
        for p in procs:
            p.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0
