"""Every DuckDB connection of the pipeline: how it is configured, opened and used for a transaction.

- Offline: extensions are never downloaded or auto-loaded (only parquet, json and icu are built in).
- UTC: every session's time zone is UTC (`use_utc`), so `current_timestamp::timestamp`, casts of
  offset timestamps and everything stored read the same whatever `TZ` the host has.
- Bounded memory: `memory_limit` from `SEGMENTS_DUCKDB_MEMORY_LIMIT` (default 2000MB) so joins,
  sorts and aggregates over the largest tables spill to `$SEGMENTS_HOME/tmp/duckdb` instead of
  growing the process; the whole pipeline stays within about 4 GB at a million customers. dbt's
  profile reads the same variable.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

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


def release_memory() -> None:
    """Give the memory a finished step freed back to the operating system.

    The pipeline runs its steps in one process. Freed memory otherwise stays with the allocators that
    served it (pyarrow's pool behind pandas strings, glibc's heap), so every later step starts from the
    high-water mark of the ones before and the process peak is their sum, not their maximum (measured
    at a million customers: scoring left ~650 MB behind). Cheap: call it after each step's warehouse work.
    """
    gc.collect()
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except ImportError:  # pragma: no cover - pyarrow comes with pandas 3 here
        pass
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def use_utc(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Run the session in UTC. DuckDB takes its time zone from the host, and a naive `timestamp` column
    stores the session's local time: without this, a home run under two `TZ`s mixes two clocks (history
    periods that end before they start). Set after connecting: the setting needs ICU loaded, which a
    connect-time config with autoloading off refuses."""
    con.execute("set TimeZone = 'UTC'")
    return con


@contextmanager
def connect(path: str | Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file at `path` (offline, bounded memory), closed and its memory
    handed back (`release_memory`) when the block ends. The pipeline runs every step in one process:
    without the hand-back one step's garbage would raise the next one's peak."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only, config=duckdb_config())
    try:
        use_utc(con)
        yield con
    finally:
        con.close()
        release_memory()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """`begin`; commit when the block ends, roll back (and re-raise) when it raises, also on Ctrl-C."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        with suppress(duckdb.TransactionException):  # a failed commit or statement may have rolled back already
            con.execute("rollback")
        raise
    con.execute("commit")
