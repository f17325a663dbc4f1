"""The MLflow registry vocabulary and access, said once: model names, aliases, the client.

MLflow runs on SQLite here (tracking and registry in one file). Models are registered under the
name of their asset and move between aliases, never stages: a freshly trained version gets
`challenger`; the promotion step (`ml/segmentation/promotion.py`) moves `champion` to it when it
passes its gates and removes `challenger`; scoring loads `@champion`.

A version is what a definition, a seed and the training data make: it carries them as tags
(`TRAINING_DATA_SHA256`, `TRAINING_DATA_DIGEST`, `DEFINITION_VERSION`, `SEED`), so a retrain of the
same data (a recovery after a crash, a forced re-run) finds and reuses it instead of registering a
copy. It also carries the Dagster run that trained it (`dagster_run_id`) and one tag per run that
reused it (`reused_by_dagster_run.<run id>`), so each run's promotion step finds its version.
`end_runs_of_dagster_runs` ends the MLflow runs a killed process left RUNNING.
"""

from __future__ import annotations

import fcntl
import logging
import re
import subprocess
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow

# Registered model names (each the name of its Dagster asset) and the experiment their runs go to.
SEGMENTATION_MODEL = "customer_segmentation"
EXPERIMENT = SEGMENTATION_MODEL
# Aliases: just trained / used for scoring.
CHALLENGER, CHAMPION = "challenger", "champion"

RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
# Tags of a run and of its registered version: what the version was made from. The same values mean the
# same model, so a new training reuses the version instead of fitting and registering it again.
DAGSTER_RUN_TAG = "dagster_run_id"
DAGSTER_RUN_URL_TAG = "dagster_run_url"  # the run's page in the Dagster UI
# The run tags a registered version carries too: the Dagster run that trained it, and its page.
VERSION_RUN_TAGS = (DAGSTER_RUN_TAG, DAGSTER_RUN_URL_TAG)
# MLflow's own tags: a run's description (shown on its page) and an experiment's kind (without it the UI
# 3.x opens an experiment in its GenAI view).
DESCRIPTION_TAG = "mlflow.note.content"
EXPERIMENT_KIND_TAG, CLASSIC_ML_KIND = "mlflow.experimentKind", "custom_model_development"
TRAINING_DATA_DIGEST = "training_data_digest"  # the logged dataset's digest (its input columns, every row)
TRAINING_DATA_SHA256 = "training_data_sha256"  # every row and column training reads
DEFINITION_VERSION = "definition_version"
SEED = "seed"
# On a version, one tag per Dagster run that reused it instead of training (`<prefix><run id>` = "reused").
REUSED_BY_PREFIX = "reused_by_dagster_run."
# Values put into search filters: run ids, digests, versions, seeds (never free text).
_FILTER_VALUE = re.compile(r"^[A-Za-z0-9_.:+-]*$")
TERMINAL_RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def client(tracking_uri: str) -> mlflow.MlflowClient:
    """A client of the tracking server and registry at `tracking_uri`; also points the `mlflow` module
    (fluent API, `models:/` URIs) at it, so that both always talk to the same store."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)


def model_version_page(ui_url: str, name: str, version: str) -> str:
    """The MLflow UI's page of version `version` of model `name`."""
    return f"{ui_url}/#/models/{name}/versions/{version}"


def run_page(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI's page of run `run_id`."""
    return f"{ui_url}/#/experiments/{experiment_id}/runs/{run_id}"


@contextmanager
def training_run(experiment_id: str, *, run_name: str, tags: Mapping[str, str], started_ms: int, description: str):
    """The MLflow run of one training, active in the block: named `run_name`, described by `description`
    (markdown, the run page's description), tagged `tags` from its creation (a run a killed process leaves
    RUNNING still names its Dagster run), and started at `started_ms` (epoch ms, when training began) so that
    its duration covers the training, not only the logging. An exception ends it FAILED."""
    created = mlflow.MlflowClient(mlflow.get_tracking_uri()).create_run(
        experiment_id, start_time=started_ms, tags={**tags, DESCRIPTION_TAG: description}, run_name=run_name
    )
    with mlflow.start_run(run_id=created.info.run_id) as run:
        yield run


def version_tags(run_tags: Mapping[str, str], identity: Mapping[str, str]) -> dict[str, str]:
    """The tags of a registered version: the model's identity and the Dagster run of its training run."""
    return {**{k: v for k, v in run_tags.items() if k in VERSION_RUN_TAGS}, **identity}


@dataclass(frozen=True)
class VersionLineage:
    """What a registered version was made from and by whom: its MLflow run, the training data digests, the
    definition version and seed, and the Dagster run, code and dbt manifest that trained it."""

    name: str
    version: str
    aliases: list[str]
    run_id: str
    experiment_id: str
    tags: dict[str, str]  # the run's lineage tags (TRAINING_DATA_DIGEST, DAGSTER_RUN_TAG, git_sha, ...)


LINEAGE_TAGS = (
    TRAINING_DATA_DIGEST,
    TRAINING_DATA_SHA256,
    DEFINITION_VERSION,
    SEED,
    DAGSTER_RUN_TAG,
    DAGSTER_RUN_URL_TAG,
    "git_sha",
    "dbt_manifest_sha",
)


def version_lineage(tracking_uri: str, name: str, version: str) -> VersionLineage:
    """The lineage of version `version` of model `name` (MlflowException when there is no such version)."""
    mlflow_client = client(tracking_uri)
    model_version = mlflow_client.get_model_version(name, str(version))
    run = mlflow_client.get_run(model_version.run_id)
    tags = {k: run.data.tags[k] for k in LINEAGE_TAGS if k in run.data.tags}
    return VersionLineage(
        name, str(version), list(model_version.aliases), run.info.run_id, run.info.experiment_id, tags
    )


def version_by_alias(tracking_uri: str, name: str, alias: str):
    """The ModelVersion `name@alias`, or None when no version carries the alias."""
    try:
        return client(tracking_uri).get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


def _filter_value(value: str) -> str:
    if not _FILTER_VALUE.match(value):
        raise ValueError(f"not usable in an MLflow search filter: {value!r}")
    return f"'{value}'"


def versions_with_tags(tracking_uri: str, name: str, tags: Mapping[str, str]) -> list:
    """The versions of `name` carrying every one of `tags` (key = value), oldest first: one search the
    registry filters by tag (no scan of the model's versions)."""
    if not RUN_ID.match(name):
        raise ValueError(f"not a model name: {name!r}")
    conditions = [f"name = {_filter_value(name)}"]
    for key, value in tags.items():
        if not RUN_ID.match(key):
            raise ValueError(f"not a tag key: {key!r}")
        conditions.append(f"tags.`{key}` = {_filter_value(str(value))}")
    versions = client(tracking_uri).search_model_versions(" and ".join(conditions))
    return sorted(versions, key=lambda v: int(v.version))


def versions_of_run(tracking_uri: str, name: str, dagster_run_id: str) -> list:
    """The versions of `name` a Dagster run registered (the version's `dagster_run_id` tag) or reused
    (`reused_by_dagster_run.<run id>`), oldest first."""
    if not RUN_ID.match(dagster_run_id):
        raise ValueError(f"not a run id: {dagster_run_id!r}")
    trained = versions_with_tags(tracking_uri, name, {DAGSTER_RUN_TAG: dagster_run_id})
    reused = versions_with_tags(tracking_uri, name, {REUSED_BY_PREFIX + dagster_run_id: "reused"})
    by_version = {int(v.version): v for v in [*trained, *reused]}
    return [by_version[v] for v in sorted(by_version)]


def mark_reused(tracking_uri: str, name: str, version: str, dagster_run_id: str) -> None:
    """Record on `name` version `version` that a Dagster run reused it (`versions_of_run` finds it)."""
    if not RUN_ID.match(dagster_run_id):
        raise ValueError(f"not a run id: {dagster_run_id!r}")
    client(tracking_uri).set_model_version_tag(name, str(version), REUSED_BY_PREFIX + dagster_run_id, "reused")


def end_runs_of_dagster_runs(tracking_uri: str, dagster_run_ids: Iterable[str], status: str = "KILLED") -> list[str]:
    """End every MLflow run still RUNNING or SCHEDULED whose `dagster_run_id` tag is one of
    `dagster_run_ids` (Dagster runs known to be dead: a killed process cannot end its MLflow run), with
    `status` and the current time as end time. Returns the MLflow run ids ended, in the order found.

    One search of the unfinished runs of every experiment, tags compared here (MLflow filters cannot
    match a tag against a list); nothing is read when `dagster_run_ids` is empty."""
    if status not in TERMINAL_RUN_STATUSES:
        raise ValueError(f"status must be one of {TERMINAL_RUN_STATUSES}, got {status!r}")
    dead = set(dagster_run_ids)
    if not dead:
        return []
    from mlflow.entities import ViewType

    mlflow_client = client(tracking_uri)
    experiment_ids, token = [], None
    while True:
        page = mlflow_client.search_experiments(view_type=ViewType.ALL, page_token=token)
        experiment_ids += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    unfinished = " and ".join(f"attributes.status != '{s}'" for s in TERMINAL_RUN_STATUSES)
    orphans, token = [], None
    while experiment_ids:  # all pages first: ending a run while paging would shift the later pages
        page = mlflow_client.search_runs(experiment_ids, unfinished, ViewType.ALL, page_token=token)
        orphans += [r.info.run_id for r in page if r.data.tags.get(DAGSTER_RUN_TAG) in dead]
        token = page.token
        if not token:
            break
    for run_id in orphans:
        mlflow_client.set_terminated(run_id, status)
    return orphans


def apply_verdict(tracking_uri: str, name: str, version: str, passed: bool) -> bool:
    """Move the aliases after a promotion gate judged `version` of `name`: passing, it becomes `champion`
    and loses `challenger`; failing, nothing changes (the champion keeps scoring, the version stays
    challenger). A version already champion (reused by a retrain of the same data) stays champion whatever
    the verdict, and only a `challenger` alias left on it by an interrupted promotion is removed. Returns
    whether it already was champion."""
    mlflow_client = client(tracking_uri)
    aliases = mlflow_client.get_registered_model(name).aliases
    version = str(version)
    already_champion = str(aliases.get(CHAMPION)) == version
    if passed and not already_champion:
        mlflow_client.set_registered_model_alias(name, CHAMPION, version)
    if (passed or already_champion) and str(aliases.get(CHALLENGER)) == version:
        mlflow_client.delete_registered_model_alias(name, CHALLENGER)
    return already_champion


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
    """Create the MLflow SQLite schema once, serialised by a file lock: a parallel first-time
    initialisation corrupts the database. In this process: opening MLflow's SQLAlchemy tracking store
    on an empty database creates every table and applies every migration (what `mlflow db upgrade`
    does, without starting a second Python that imports MLflow again, ~3 s). Its Default experiment
    keeps its artifacts in `mlartifacts` beside the database, the folder a SEGMENTS_HOME has for them."""
    db_path = Path(db_path).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    marker = db_path.with_suffix(".initialised")
    if marker.exists():
        return
    with open(db_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        progress = logging.getLogger("mlflow.store.db.utils")  # "Creating initial MLflow database tables..."
        level = progress.level
        progress.setLevel(logging.WARNING)
        try:
            SqlAlchemyStore(f"sqlite:///{db_path}", (db_path.parent / "mlartifacts").as_uri())
        finally:
            progress.setLevel(level)
        marker.touch()
