"""Resources shared by every asset: the DuckDB warehouse, MLflow and dbt (same keys everywhere)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from warehouse.connections import OFFLINE_CONFIG, duckdb_config, release_memory

# Extensions are never downloaded at run time: only the statically linked ones exist offline.
DUCKDB_CONFIG = OFFLINE_CONFIG


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file. Open it only inside assets of pool `warehouse` when writing."""

    path: str

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.path, read_only=read_only, config=duckdb_config())
        try:
            yield con
        finally:
            con.close()
            release_memory()  # one process runs every step: do not let this one's garbage raise the next one's peak


class ServingResource(dg.ConfigurableResource):
    """The folder of the published read-only copy BI tools read (`$SEGMENTS_HOME/serving`)."""

    path: str


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking + registry on SQLite, artifacts on the local disk."""

    tracking_uri: str
    artifacts_dir: str

    def ui_url(self, port: int = 5000) -> str:
        return f"http://127.0.0.1:{port}"
