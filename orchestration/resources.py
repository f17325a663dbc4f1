"""Resources shared by every asset: the DuckDB warehouse, the serving folder and MLflow (same keys everywhere)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
import mlflow

from ml.model_registry import client, model_version_page, run_page
from orchestration.settings import DEFAULT_MLFLOW_UI_URL
from warehouse.connections import connect


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file. Open it only inside assets of pool `warehouse` when writing."""

    path: str

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.path, read_only=read_only) as con:
            yield con


class IdentityFilesResource(dg.ConfigurableResource):
    """The folder of the user's identity files: `labels.csv` (labelled pairs that set the match
    threshold) and `overrides.csv` (reviewers' link / never-link decisions). Either may be missing."""

    path: str


class ServingResource(dg.ConfigurableResource):
    """The folder of the published read-only copy BI tools read (`$SEGMENTS_HOME/serving`)."""

    path: str


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking + registry on SQLite, artifacts on the local disk; `ui_url` where the MLflow UI is
    reached (the links in Dagster metadata)."""

    tracking_uri: str
    artifacts_dir: str
    ui_url: str = DEFAULT_MLFLOW_UI_URL

    def client(self) -> mlflow.MlflowClient:
        return client(self.tracking_uri)

    def model_version_url(self, name: str, version: str) -> str:
        return model_version_page(self.ui_url, name, version)

    def run_url(self, run_id: str) -> str:
        """The MLflow UI's page of run `run_id`."""
        return run_page(self.ui_url, self.client().get_run(run_id).info.experiment_id, run_id)
