"""Resources shared by every asset: the DuckDB warehouse, the serving folder and MLflow (same keys everywhere)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
import mlflow

from ml.model_registry import client
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
    """MLflow tracking + registry on SQLite, artifacts on the local disk."""

    tracking_uri: str
    artifacts_dir: str

    def client(self) -> mlflow.MlflowClient:
        return client(self.tracking_uri)

    def ui_url(self, port: int = 5000) -> str:
        return f"http://127.0.0.1:{port}"
