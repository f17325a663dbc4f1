"""The MLflow registry vocabulary and access, said once: model names, aliases, the client.

MLflow runs on SQLite here (tracking and registry in one file). Models are registered under the
name of their asset and move between aliases, never stages: a freshly trained version gets
`challenger`; the promotion step (`ml/segmentation/promotion.py`) moves `champion` to it when it
passes its gates and removes `challenger`; scoring loads `@champion`.
"""

from __future__ import annotations

import fcntl
import re
import subprocess
import sys
from pathlib import Path

import mlflow

# Registered model names (each the name of its Dagster asset) and the experiment their runs go to.
SEGMENTATION_MODEL = "customer_segmentation"
EXPERIMENT = SEGMENTATION_MODEL
# Aliases: just trained / used for scoring.
CHALLENGER, CHAMPION = "challenger", "champion"

RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def client(tracking_uri: str) -> mlflow.MlflowClient:
    """A client of the tracking server and registry at `tracking_uri`; also points the `mlflow` module
    (fluent API, `models:/` URIs) at it, so that both always talk to the same store."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)


def version_by_alias(tracking_uri: str, name: str, alias: str):
    """The ModelVersion `name@alias`, or None when no version carries the alias."""
    try:
        return client(tracking_uri).get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


def versions_of_run(tracking_uri: str, name: str, dagster_run_id: str) -> list:
    """The versions of `name` registered by a Dagster run (the version's `dagster_run_id` tag), oldest first."""
    if not RUN_ID.match(dagster_run_id) or not RUN_ID.match(name):
        raise ValueError(f"not a run id or model name: {dagster_run_id!r}, {name!r}")
    query = f"name = '{name}' and tags.dagster_run_id = '{dagster_run_id}'"
    return sorted(client(tracking_uri).search_model_versions(query), key=lambda v: int(v.version))


def load_by_alias(tracking_uri: str, name: str, alias: str = CHAMPION):
    """(pyfunc model, version string) of `name@alias`, or None when no version carries the alias."""
    version = version_by_alias(tracking_uri, name, alias)
    if version is None:
        return None
    client(tracking_uri)
    return mlflow.pyfunc.load_model(f"models:/{name}@{alias}"), str(version.version)


def git_sha() -> str:
    """The commit the code runs from ("unknown" outside a git checkout): a lineage tag of every model."""
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def ensure_tracking_db(db_path: Path) -> None:
    """Create the MLflow SQLite schema once (`mlflow db upgrade`), serialised by a file lock:
    a parallel first-time initialisation corrupts the database."""
    db_path = Path(db_path).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    marker = db_path.with_suffix(".initialised")
    if marker.exists():
        return
    with open(db_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        proc = subprocess.run(
            [str(mlflow_bin), "db", "upgrade", f"sqlite:///{db_path}"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"mlflow db upgrade failed:\n{proc.stderr[-2000:]}")
        marker.touch()
