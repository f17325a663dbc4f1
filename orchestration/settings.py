"""Where everything lives, read lazily from the environment (never at import time).

Everything the pipeline writes is under `SEGMENTS_HOME` (default `./data`):

    warehouse.duckdb   the DuckDB warehouse (raw, staging, marts, ml, segments, audit schemas)
    mlflow.db          MLflow tracking + model registry (SQLite)
    mlartifacts/       MLflow artifacts (models, profiles, model cards)
    serving/           the published read-only copy BI tools read
    dagster/           DAGSTER_HOME: run history, event logs, dagster.yaml
    landing/           default landing folder (override with SEGMENTS_LANDING or `segments run --landing`)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from warehouse.ingest import DEFAULT_SETTLE_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent

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

    def ensure_dirs(self) -> None:
        for path in (self.home, self.mlflow_artifacts_dir, self.serving_dir, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        dagster_yaml = self.dagster_home / "dagster.yaml"
        if not dagster_yaml.exists() or dagster_yaml.read_text() != DAGSTER_YAML:
            dagster_yaml.write_text(DAGSTER_YAML)


def get_settings() -> Settings:
    """Read SEGMENTS_HOME / SEGMENTS_LANDING / SEGMENTS_GX_SAMPLE_ROWS / SEGMENTS_LANDING_SETTLE_SECONDS /
    SEGMENTS_IDENTITY_DIR now (call it lazily)."""
    home = Path(os.environ.get("SEGMENTS_HOME") or "data").expanduser().resolve()
    landing = Path(os.environ.get("SEGMENTS_LANDING") or home / "landing").expanduser().resolve()
    return Settings(
        home=home,
        landing_dir=landing,
        gx_sample_rows=int(os.environ.get("SEGMENTS_GX_SAMPLE_ROWS") or 100_000),
        landing_settle_seconds=float(os.environ.get("SEGMENTS_LANDING_SETTLE_SECONDS") or DEFAULT_SETTLE_SECONDS),
        identity_dir=(
            Path(os.environ["SEGMENTS_IDENTITY_DIR"]).expanduser().resolve()
            if os.environ.get("SEGMENTS_IDENTITY_DIR")
            else None
        ),
    )
