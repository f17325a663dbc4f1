"""Publish the BI-facing tables as a read-only snapshot that BI tools can open at any time.

DuckDB allows one writer process and, while it writes, no other process at all: a BI tool that opens
`warehouse.duckdb` would block the pipeline or fail with a lock error. So after every successful run
the BI-facing tables are copied, from the warehouse opened read-only, into a *new* DuckDB file and
Parquet files, and only then made visible by atomic renames. A reader sees the complete previous
version or the complete new one, never a half-written file, and never takes a lock on the warehouse.

Layout under `serving_dir` (`$SEGMENTS_HOME/serving`):

    versions/<UTC timestamp>-<run_id[:8]>/
        bi.duckdb                          every published table (schemas below)
        parquet/<schema>.<table>.parquet   the same tables as Parquet
        manifest.json                      run_id, published_at, per table rows, columns, sha256
    current -> versions/<newest>           symlink, swapped by os.replace of a temporary symlink
    bi.duckdb                              hard link to current/bi.duckdb, swapped by os.replace

Both pointers are replaced with `os.replace`, which is an atomic rename on POSIX: a reader that opens
`bi.duckdb` gets the old inode or the new one, and one that already has it open keeps reading
the old inode even after its version directory was pruned. The newest `keep` versions are kept,
and never the one `current` points to is removed, so a Parquet reader that resolved `current` has at
least `keep - 1` more publications before its files go.

What is published (all copied as tables, PII-free):

- `segments.<every table and view of the warehouse schema segments>`, enumerated at publish time;
- `reporting.customers`: `marts.customers` reduced to an allow-list of non-PII columns (no names,
  e-mails, phones, addresses, birth dates, source record ids);
- `reporting.customer_features`: the `marts.customer_features` columns whose registry entry allows
  `reporting` and whose PII class is `none` or `pseudonymous_id` (this drops `country`, a
  quasi-identifier; `reporting.customers` keeps it, see `CUSTOMER_COLUMNS`);
- `serving.publication` (one row: version, run_id, published_at) and `serving.published_tables`
  (one row per table with its row count), so a reader knows what it reads from the file alone.

RESTRICTED, apart from the BI copy: `restricted_activation.duckdb` (in the version and as
`serving/restricted_activation.duckdb`, swapped the same way, mode 0600) holds the warehouse's `activation`
schema: the crosswalk from published customer ids to the user's source keys and the outbox with
destination keys, for reverse-ETL consumers. It may carry source keys (`crm_customer_id`,
`erp_account_id`) and no other PII column.

Every published column is checked against `PII_COLUMN` as a last guard: a PII column added to the
`segments` schema stops the publication instead of reaching BI.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

# Extensions are never downloaded or loaded implicitly: parquet and json are statically linked.
from warehouse.connections import OFFLINE_CONFIG as DUCKDB_CONFIG
from warehouse.connections import transaction, use_utc
from warehouse.feature_registry import load_registry

# Storage format of the published file: readable by DuckDB 1.0 and later, since BI tools and drivers
# (DBeaver, Metabase, Superset, older Python/R/ODBC clients) often lag the pipeline's DuckDB 2.x.
STORAGE_VERSION = "v1.0.0"

# Not "segments.duckdb": DuckDB names the catalog after the file, and a catalog `segments` would make
# `segments.customer_segments` ambiguous (catalog.table or schema.table) in every BI query.
DUCKDB_FILE = "bi.duckdb"
PARQUET_DIR = "parquet"
MANIFEST_FILE = "manifest.json"
VERSIONS_DIR = "versions"
CURRENT_LINK = "current"
LOCK_FILE = ".publish.lock"
STAGING_PREFIX = ".staging-"
TEMP_PREFIX = ".tmp-"
DEFAULT_KEEP = 3

# RESTRICTED: the activation schema (source keys for reverse ETL) is published into its own file, never
# into bi.duckdb, readable by the owner only (mode 0600).
ACTIVATION_FILE = "restricted_activation.duckdb"
ACTIVATION_SCHEMA = "activation"
ACTIVATION_MODE = 0o600
# The source keys the activation file exists to carry; every other PII column is refused there too.
ACTIVATION_KEY_COLUMN = re.compile(r"^(crm_customer_ids?|erp_account_ids?)$")
SEGMENTS_SCHEMA = "segments"
REPORTING_SCHEMA = "reporting"
META_SCHEMA = "serving"
# marts.customers -> reporting.customers: an allow-list, so a PII column added to the golden record
# later is not published by accident. `country` (ISO 3166-1 alpha-2) is a quasi-identifier but a
# coarse one that BI needs to slice segments by market; the city, postal code and street are not
# published. `first_seen_at` is when the earliest source record was created, not a personal date.
CUSTOMER_COLUMNS = ("customer_id", "country", "first_seen_at", "source_system_count", "has_profiling_consent")
# Registry PII classes a reporting feature may carry to be published.
PUBLISHABLE_PII_CLASSES = ("none", "pseudonymous_id")

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# Last guard on every published column: direct identifiers and their provenance columns
# (`email`, `email_source`, `email_updated_at`, ...), addresses, birth dates, source system keys.
PII_COLUMN = re.compile(
    r"^(?:(?:first_name|last_name|full_name|name|email|phone|street|city|postal_code|birth_date|date_of_birth"
    r"|ip_address)(?:_.*)?|.*record_ids?|crm_customer_id|erp_account_id|device_id)$"
)


class ServingError(ValueError):
    """The publication was refused: an unsafe identifier, a PII column, a missing mart or bad settings."""


@dataclass(frozen=True)
class PublishedTable:
    schema: str
    name: str
    source: str  # where it came from in the warehouse
    rows: int
    columns: tuple[str, ...]
    parquet: str  # relative to the version directory
    sha256: str

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class PublishResult:
    version: str
    version_dir: Path
    duckdb_path: Path  # the stable path BI opens: serving/bi.duckdb
    current_link: Path
    run_id: str
    published_at: str
    tables: tuple[PublishedTable, ...]
    pruned: tuple[str, ...] = field(default=())
    seconds: float = 0.0

    @property
    def row_counts(self) -> dict[str, int]:
        return {t.qualified_name: t.rows for t in self.tables}


def validate_identifier(name: str) -> str:
    """`name` if it is a plain lower-case SQL identifier, else ServingError (it will be put in SQL)."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise ServingError(f"refusing identifier {name!r}: must match {IDENTIFIER.pattern}")
    return name


def _sql_string(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def reporting_feature_columns(registry: Mapping[str, object] | None = None) -> tuple[str, ...]:
    """The feature columns BI may see: allowed for `reporting` with PII class none/pseudonymous_id."""
    if registry is None:
        registry = load_registry()
    return tuple(
        name
        for name, info in registry.items()
        if "reporting" in info.allowed_purposes and info.pii_class in PUBLISHABLE_PII_CLASSES
    )


def _relations(con: duckdb.DuckDBPyConnection, catalog: str, schema: str) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables "
        "where table_catalog = ? and table_schema = ? order by table_name",
        [catalog, schema],
    ).fetchall()
    return [r[0] for r in rows]


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_catalog = ? and table_schema = ? and table_name = ? order by ordinal_position",
        [catalog, schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def _plan(con: duckdb.DuckDBPyConnection, feature_columns: Sequence[str]) -> list[tuple[str, str, str, list[str]]]:
    """(target schema, target table, source relation, columns) of everything to publish, validated."""
    plan: list[tuple[str, str, str, list[str]]] = []
    for table in _relations(con, "wh", SEGMENTS_SCHEMA):
        validate_identifier(table)
        plan.append((SEGMENTS_SCHEMA, table, f"{SEGMENTS_SCHEMA}.{table}", _columns(con, "wh", SEGMENTS_SCHEMA, table)))
    for table, wanted in (("customers", CUSTOMER_COLUMNS), ("customer_features", tuple(feature_columns))):
        existing = _columns(con, "wh", "marts", table)
        if not existing:
            raise ServingError(f"marts.{table} does not exist in the warehouse: build the marts before publishing")
        # the mart's column order, restricted to the allowed columns
        columns = [c for c in existing if c in set(wanted)]
        if "customer_id" not in columns:
            raise ServingError(f"marts.{table}: customer_id is missing, nothing to publish")
        plan.append((REPORTING_SCHEMA, table, f"marts.{table}", columns))
    for schema, table, _, columns in plan:
        for column in columns:
            validate_identifier(column)
            if PII_COLUMN.match(column):
                raise ServingError(f"refusing to publish {schema}.{table}.{column}: looks like PII")
    return plan


def _activation_plan(con: duckdb.DuckDBPyConnection) -> list[tuple[str, list[str]]]:
    """(table, columns) of the warehouse's activation schema, validated: source keys only, no other PII."""
    plan = []
    for table in _relations(con, "wh", ACTIVATION_SCHEMA):
        validate_identifier(table)
        columns = _columns(con, "wh", ACTIVATION_SCHEMA, table)
        for column in columns:
            validate_identifier(column)
            if PII_COLUMN.match(column) and not ACTIVATION_KEY_COLUMN.match(column):
                raise ServingError(f"refusing to publish {ACTIVATION_SCHEMA}.{table}.{column}: looks like PII")
        plan.append((table, columns))
    return plan


def _write_activation(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, int]:
    """The restricted file: the activation schema alone, created owner-only before anything is written."""
    plan = _activation_plan(con)
    if not plan:
        return {}
    con.execute(f"attach {_sql_string(path)} as act (storage_version '{STORAGE_VERSION}')")
    os.chmod(path, ACTIVATION_MODE)  # owner-only before any row is written
    with transaction(con):
        con.execute(f"create schema act.{ACTIVATION_SCHEMA}")
        for table, columns in plan:
            con.execute(
                f"create table act.{ACTIVATION_SCHEMA}.{table} as "
                f"select {', '.join(columns)} from wh.{ACTIVATION_SCHEMA}.{table}"
            )
    counts = {
        f"{ACTIVATION_SCHEMA}.{table}": con.execute(f"select count(*) from act.{ACTIVATION_SCHEMA}.{table}").fetchone()[
            0
        ]
        for table, _ in plan
    }
    con.execute("checkpoint act")
    con.execute("detach act")
    return counts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    """Flush a file or directory to disk, so a crash after the swap cannot expose an empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_snapshot(
    warehouse_path: Path, staging: Path, version: str, run_id: str, published_at: str, feature_columns: Sequence[str]
) -> list[PublishedTable]:
    """Build bi.duckdb and the Parquet files of one version in `staging` (not yet visible)."""
    db_path = staging / DUCKDB_FILE
    (staging / PARQUET_DIR).mkdir()
    con = use_utc(duckdb.connect(config=DUCKDB_CONFIG))
    try:
        con.execute(f"attach {_sql_string(warehouse_path)} as wh (read_only)")
        con.execute(f"attach {_sql_string(db_path)} as pub (storage_version '{STORAGE_VERSION}')")
        plan = _plan(con, feature_columns)
        # One transaction: every table comes from the same state of the warehouse.
        with transaction(con):
            for schema in (SEGMENTS_SCHEMA, REPORTING_SCHEMA, META_SCHEMA):
                con.execute(f"create schema pub.{schema}")
            for schema, table, source, columns in plan:
                con.execute(f"create table pub.{schema}.{table} as select {', '.join(columns)} from wh.{source}")
        _write_activation(con, staging / ACTIVATION_FILE)
        con.execute("detach wh")  # the warehouse is free again; the rest reads the new file only
        counts = {
            (schema, table): con.execute(f"select count(*) from pub.{schema}.{table}").fetchall()[0][0]
            for schema, table, _, _ in plan
        }
        con.execute(
            f"create table pub.{META_SCHEMA}.publication as select ? as version, ? as run_id, "
            "cast(? as timestamp) as published_at",
            [version, run_id, published_at.removesuffix("Z")],
        )
        con.execute(
            f"create table pub.{META_SCHEMA}.published_tables "
            "(table_schema varchar, table_name varchar, source varchar, row_count bigint)"
        )
        con.executemany(
            f"insert into pub.{META_SCHEMA}.published_tables values (?, ?, ?, ?)",
            [[schema, table, source, counts[(schema, table)]] for schema, table, source, _ in plan],
        )
        published = []
        for schema, table, source, columns in plan:
            rel = f"{PARQUET_DIR}/{schema}.{table}.parquet"
            con.execute(f"copy pub.{schema}.{table} to {_sql_string(staging / rel)} (format parquet)")
            published.append(
                PublishedTable(
                    schema, table, source, counts[(schema, table)], tuple(columns), rel, _sha256(staging / rel)
                )
            )
        con.execute("checkpoint pub")
        con.execute("detach pub")
    finally:
        con.close()
    if Path(f"{db_path}.wal").exists():  # readers open the file alone: it must be complete without a WAL
        raise ServingError(f"{db_path}.wal left behind after checkpoint")
    return published


def _write_manifest(staging: Path, version: str, run_id: str, published_at: str, tables: list[PublishedTable]) -> None:
    manifest = {
        "version": version,
        "run_id": run_id,
        "published_at": published_at,
        "duckdb": {"file": DUCKDB_FILE, "storage_version": STORAGE_VERSION, "sha256": _sha256(staging / DUCKDB_FILE)},
        "tables": {
            t.qualified_name: {
                "rows": t.rows,
                "source": t.source,
                "columns": list(t.columns),
                "parquet": t.parquet,
                "sha256": t.sha256,
            }
            for t in tables
        },
    }
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


@contextmanager
def _publish_lock(serving_dir: Path) -> Iterator[None]:
    """One publisher at a time (the Dagster pool already serialises runs; this covers manual calls)."""
    with (serving_dir / LOCK_FILE).open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _swap(target: Path, make_temp) -> None:
    """Atomically point `target` at something new: create it under a temporary name, then rename."""
    temp = target.with_name(f"{TEMP_PREFIX}{target.name}-{os.getpid()}")
    if temp.is_symlink() or temp.exists():
        temp.unlink()
    make_temp(temp)
    os.replace(temp, target)


def _link_or_copy(source: Path, temp: Path) -> None:
    try:
        os.link(source, temp)  # same inode as the version's file: no second copy on disk
    except OSError:  # file systems without hard links
        shutil.copyfile(source, temp)
        shutil.copymode(source, temp)  # a restricted file stays restricted
        _fsync(temp)


def current_version(serving_dir: Path) -> str | None:
    """The version `current` points to, or None before the first publication."""
    link = Path(serving_dir) / CURRENT_LINK
    return Path(os.readlink(link)).name if link.is_symlink() else None


def list_versions(serving_dir: Path) -> list[str]:
    """Published versions, oldest first (names sort by publication time)."""
    versions = Path(serving_dir) / VERSIONS_DIR
    if not versions.is_dir():
        return []
    return sorted(p.name for p in versions.iterdir() if p.is_dir() and not p.name.startswith("."))


def _prune(serving_dir: Path, keep: int) -> tuple[str, ...]:
    """Delete all but the newest `keep` versions, never the one `current` points to."""
    versions_dir = serving_dir / VERSIONS_DIR
    current = current_version(serving_dir)
    versions = list_versions(serving_dir)
    doomed = [v for v in versions[: max(len(versions) - keep, 0)] if v != current]
    for version in doomed:
        shutil.rmtree(versions_dir / version)
    return tuple(doomed)


def _clean_leftovers(serving_dir: Path) -> None:
    """Remove what a crashed publication left behind (only ever called under the publish lock)."""
    for path in (serving_dir / VERSIONS_DIR).glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in serving_dir.glob(f"{TEMP_PREFIX}*"):
        path.unlink(missing_ok=True)


def clean_staging(serving_dir: Path) -> None:
    """Remove the staging folders and temporary links a killed publication left (the next publication
    would too; a run that reaps a dead one calls it at once). Nothing visible to readers is touched."""
    if not serving_dir.is_dir():
        return
    with _publish_lock(serving_dir):
        _clean_leftovers(serving_dir)


def _version_name(run_id: str, now: datetime) -> str:
    short = re.sub(r"[^a-z0-9]", "", run_id.lower())[:8]
    if not short:
        raise ServingError(f"run_id {run_id!r} has no usable characters for a version name")
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{short}"


def publish(
    warehouse_path: Path | str,
    serving_dir: Path | str,
    run_id: str,
    *,
    keep: int = DEFAULT_KEEP,
    feature_columns: Sequence[str] | None = None,
) -> PublishResult:
    """Publish the BI-facing tables of the warehouse as a new serving version and make it current.

    The warehouse is opened read-only (so no other process may be writing it: run this in the
    warehouse pool). `feature_columns` defaults to the registry's reporting-safe features
    (`reporting_feature_columns`); columns the mart does not have are skipped.
    """
    t0 = time.monotonic()
    warehouse_path, serving_dir = Path(warehouse_path), Path(serving_dir)
    if keep < 1:
        raise ServingError(f"keep must be at least 1, got {keep}")
    if not warehouse_path.is_file():
        raise ServingError(f"no warehouse at {warehouse_path}")
    features = tuple(feature_columns) if feature_columns is not None else reporting_feature_columns()
    serving_dir.mkdir(parents=True, exist_ok=True)
    (serving_dir / VERSIONS_DIR).mkdir(exist_ok=True)
    with _publish_lock(serving_dir):
        _clean_leftovers(serving_dir)
        now = datetime.now(UTC)
        version = _version_name(run_id, now)
        published_at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        version_dir = serving_dir / VERSIONS_DIR / version
        staging = serving_dir / VERSIONS_DIR / f"{STAGING_PREFIX}{version}"
        staging.mkdir()
        try:
            tables = _write_snapshot(warehouse_path, staging, version, run_id, published_at, features)
            _write_manifest(staging, version, run_id, published_at, tables)
            for path in [
                *(staging / PARQUET_DIR).iterdir(),
                *[staging / ACTIVATION_FILE] * (staging / ACTIVATION_FILE).exists(),
                staging / DUCKDB_FILE,
                staging / MANIFEST_FILE,
                staging / PARQUET_DIR,
                staging,
            ]:
                _fsync(path)
            os.rename(staging, version_dir)  # complete before anything points at it
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        # The pointers, each one atomic rename: the restricted activation file, the file most BI tools
        # open, then `current`.
        if (version_dir / ACTIVATION_FILE).exists():
            _swap(serving_dir / ACTIVATION_FILE, lambda temp: _link_or_copy(version_dir / ACTIVATION_FILE, temp))
        _swap(serving_dir / DUCKDB_FILE, lambda temp: _link_or_copy(version_dir / DUCKDB_FILE, temp))
        _swap(serving_dir / CURRENT_LINK, lambda temp: os.symlink(f"{VERSIONS_DIR}/{version}", temp))
        _fsync(serving_dir)
        pruned = _prune(serving_dir, keep)
    return PublishResult(
        version=version,
        version_dir=version_dir,
        duckdb_path=serving_dir / DUCKDB_FILE,
        current_link=serving_dir / CURRENT_LINK,
        run_id=run_id,
        published_at=published_at,
        tables=tuple(tables),
        pruned=pruned,
        seconds=time.monotonic() - t0,
    )
