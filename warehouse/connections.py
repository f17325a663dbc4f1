"""How every DuckDB connection of the pipeline is configured (one place, read at connect time).

- Offline: extensions are never downloaded or auto-loaded (only parquet, json and icu are built in).
- Bounded memory: `memory_limit` from `SEGMENTS_DUCKDB_MEMORY_LIMIT` (default 2000MB) so joins,
  sorts and aggregates over the largest tables spill to `$SEGMENTS_HOME/tmp/duckdb` instead of
  growing the process; the whole pipeline stays within about 4 GB at a million customers. dbt's
  profile reads the same variable.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
DEFAULT_MEMORY_LIMIT = "2000MB"


def duckdb_config(*, bounded: bool = True) -> dict[str, str | bool]:
    """Connection config: offline always; with `bounded`, the memory limit and a spill directory."""
    config: dict[str, str | bool] = dict(OFFLINE_CONFIG)
    if bounded:
        config["memory_limit"] = os.environ.get("SEGMENTS_DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
        home = os.environ.get("SEGMENTS_HOME")
        if home:
            spill = Path(home).expanduser().resolve() / "tmp" / "duckdb"
            spill.mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(spill)
    return config


__all__ = ["OFFLINE_CONFIG", "DEFAULT_MEMORY_LIMIT", "duckdb_config"]
