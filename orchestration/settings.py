"""Where everything lives, read lazily from the environment (never at import time).

Everything the pipeline writes is under `SEGMENTS_HOME` (default `./data`):

    warehouse.duckdb   the DuckDB warehouse (raw, staging, marts, ml, segments, audit schemas)
    mlflow.db          MLflow tracking + model registry (SQLite)
    mlartifacts/       MLflow artifacts (models, profiles, model cards)
    serving/           the published read-only copy BI tools read
    dagster/           DAGSTER_HOME: run history, event logs, dagster.yaml
    landing/           default landing folder (override with SEGMENTS_LANDING or `segments run --landing`)
    mapped/            the user's export files turned into landing tables by the project's source mappings
    definition_in_use.json  the segment definition later runs train with (`segments run --definition`)
    landing_in_use.json     the landing folder of the last `segments run --landing`, the default of later runs
                            and of runs launched from the Dagster UI

The user project (`SEGMENTS_PROJECT`, orchestration/project.py) supplies the definitions, playbooks,
mappings and lawful bases, and the defaults of SEGMENTS_HOME, the landing and the identity folders;
without one the embedded demo project is used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from warehouse.ingest import DEFAULT_SETTLE_SECONDS

if TYPE_CHECKING:
    from orchestration.project import Project

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Where the UIs are reached, for the links between them (Dagster metadata -> MLflow, MLflow tags -> Dagster):
# `segments ui` sets both for the processes it starts; the defaults are its default ports.
DAGSTER_UI_URL_VAR, MLFLOW_UI_URL_VAR = "SEGMENTS_DAGSTER_UI_URL", "SEGMENTS_MLFLOW_UI_URL"
DEFAULT_DAGSTER_UI_URL, DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:3000", "http://127.0.0.1:5000"
# ... and the reports (segment reports, validation reports), which `segments ui` serves beside them
REPORTS_URL_VAR, DEFAULT_REPORTS_URL = "SEGMENTS_REPORTS_URL", "http://127.0.0.1:3001"

DAGSTER_YAML = """\
# Written by `segments`: the instance configuration for local runs and the UI.
concurrency:
  pools:
    # Every asset that writes the DuckDB warehouse sits in pool "warehouse": one writer at a time.
    default_limit: 1
run_monitoring:
  # With the daemon (`segments ui`): runs whose worker died are marked failed and, this many seconds
  # after any run ended, its pool slots are freed. Without the daemon, `segments run` reaps dead runs
  # itself when it starts (orchestration/runs.py).
  enabled: true
  free_slots_after_run_end_seconds: 30
run_coordinator:
  # Runs launched from the UI queue; the daemon looks for them every second (its default, 5 s, is paid by every
  # launch) and starts each in one process (the build job's in-process executor).
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
telemetry:
  enabled: false
"""


@dataclass(frozen=True)
class Settings:
    """Resolved paths of one deployment."""

    home: Path
    landing_dir: Path
    # GX validates at most this many rows per suite (a seeded random sample above it); 0 = every row.
    gx_sample_rows: int = 100_000
    # A landing file is read once unchanged (size, mtime) for this many seconds, or at once with a
    # `<name>.done` marker (warehouse/ingest.py): a file still being written is left for a later run.
    landing_settle_seconds: float = DEFAULT_SETTLE_SECONDS
    # The user's identity files: labelled pairs (labels.csv) and reviewers' decisions (overrides.csv).
    identity_dir: Path | None = None
    # Reference date of the features (YYYY-MM-DD, `segments run --as-of`); None: the latest completed order.
    as_of: str | None = None
    # The user project (None: the embedded demo project, `orchestration.project.embedded_project()`).
    project_dir: Path | None = None
    # landing_dir comes from the last `segments run --landing` on this home (`remember_landing`)
    landing_remembered: bool = False
    dagster_ui_url: str = DEFAULT_DAGSTER_UI_URL
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL
    reports_url: str = DEFAULT_REPORTS_URL
    _project: list = field(default_factory=list, compare=False, repr=False)

    @property
    def project(self) -> Project:
        """The user project, read and validated once (raises ProjectError when it cannot be used)."""
        from orchestration.project import embedded_project, load_project

        if not self._project:
            self._project.append(load_project(self.project_dir) if self.project_dir else embedded_project())
        return self._project[0]

    @property
    def mapped_dir(self) -> Path:
        return self.home / "mapped"

    @property
    def definition_state_path(self) -> Path:
        return self.home / "definition_in_use.json"

    @property
    def landing_state_path(self) -> Path:
        return self.home / LANDING_STATE

    @property
    def identity_files_dir(self) -> Path:
        return self.identity_dir or self.home / "identity"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def mlflow_db_path(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def mlflow_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db_path}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def serving_dir(self) -> Path:
        return self.home / "serving"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def dagster_run_url(self, run_id: str) -> str:
        """The page of Dagster run `run_id` in the Dagster UI."""
        return f"{self.dagster_ui_url}/runs/{run_id}"

    def segment_report_url(self, version: str = "current") -> str:
        """The segment report of a publication, as `segments ui` serves it."""
        return f"{self.reports_url}/segments/{version}/report.html"

    def validation_report_url(self, run_id: str) -> str:
        """The validation report of a run, as `segments ui` serves it."""
        return f"{self.reports_url}/validation/{run_id}/index.html"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.mlflow_artifacts_dir, self.serving_dir, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        dagster_yaml = self.dagster_home / "dagster.yaml"
        if not dagster_yaml.exists() or dagster_yaml.read_text() != DAGSTER_YAML:
            dagster_yaml.write_text(DAGSTER_YAML)


LANDING_STATE = "landing_in_use.json"


def remember_landing(settings: Settings, landing: Path) -> None:
    """Record `landing` as the landing folder of later runs of this home (`segments run` without --landing,
    the Dagster UI's launches) while the project declares the landing it declares now."""
    declared = settings.project.landing_dir if settings.project_dir else None
    tmp = settings.landing_state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"path": str(Path(landing).resolve()), "declared": str(declared)}))
    tmp.replace(settings.landing_state_path)


def _remembered_landing(home: Path, declared: Path | None) -> Path | None:
    try:
        state = json.loads((home / LANDING_STATE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("declared") != str(declared) or not state.get("path"):
        return None
    return Path(state["path"])


def get_settings() -> Settings:
    """Read SEGMENTS_PROJECT / SEGMENTS_HOME / SEGMENTS_LANDING / SEGMENTS_GX_SAMPLE_ROWS /
    SEGMENTS_LANDING_SETTLE_SECONDS / SEGMENTS_IDENTITY_DIR / SEGMENTS_AS_OF / SEGMENTS_DAGSTER_UI_URL /
    SEGMENTS_MLFLOW_UI_URL / SEGMENTS_REPORTS_URL now (call it lazily). A variable wins over
    the project's setting, the project's over the default; the landing folder of the last `segments run --landing`
    (`remember_landing`) wins over the project's and the default, not over SEGMENTS_LANDING."""
    project = None
    if os.environ.get("SEGMENTS_PROJECT"):
        from orchestration.project import load_project

        project = load_project(Path(os.environ["SEGMENTS_PROJECT"]))

    def path(variable: str, from_project: Path | None, default: Path | str) -> Path:
        return Path(os.environ.get(variable) or from_project or default).expanduser().resolve()

    home = path("SEGMENTS_HOME", project and project.home, "data")
    identity = path("SEGMENTS_IDENTITY_DIR", project and project.identity_dir, home / "identity")
    remembered = (
        None if os.environ.get("SEGMENTS_LANDING") else _remembered_landing(home, project and project.landing_dir)
    )
    settings = Settings(
        home=home,
        landing_dir=remembered or path("SEGMENTS_LANDING", project and project.landing_dir, home / "landing"),
        landing_remembered=remembered is not None,
        gx_sample_rows=int(os.environ.get("SEGMENTS_GX_SAMPLE_ROWS") or 100_000),
        landing_settle_seconds=float(os.environ.get("SEGMENTS_LANDING_SETTLE_SECONDS") or DEFAULT_SETTLE_SECONDS),
        identity_dir=identity if identity != home / "identity" else None,
        project_dir=project.root if project else None,
        as_of=os.environ.get("SEGMENTS_AS_OF") or None,
        dagster_ui_url=(os.environ.get(DAGSTER_UI_URL_VAR) or DEFAULT_DAGSTER_UI_URL).rstrip("/"),
        mlflow_ui_url=(os.environ.get(MLFLOW_UI_URL_VAR) or DEFAULT_MLFLOW_UI_URL).rstrip("/"),
        reports_url=(os.environ.get(REPORTS_URL_VAR) or DEFAULT_REPORTS_URL).rstrip("/"),
    )
    if project is not None:
        settings._project.append(project)
    return settings
