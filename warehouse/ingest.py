"""Load landing files into the raw schemas, with a ledger and a quarantine.

For every file under `landing/<source>/<table>/`:

1. hash it (SHA-256); a file whose hash is already in the ledger for that table is skipped, so
   re-running the ingest, or delivering the same file twice under another name, loads nothing twice;
2. read every value as text with DuckDB (CSV rows that cannot be parsed are captured by DuckDB's
   reject tables; JSONL is read line by line and parsed with DuckDB's JSON functions);
3. check the header against the contract: a missing required column fails the file with a message
   naming the file and the column; extra columns are tolerated and reported in the ledger;
4. evaluate every contract rule in one SQL statement, producing a list of reasons per row;
5. in one transaction: insert the clean rows, typed, into `<source>.<table>`, the rejected rows with
   their reasons, origin and raw content into `audit.quarantine`, and one row into
   `audit.ingest_ledger` with rows read = rows loaded + rows quarantined.

All heavy work runs in DuckDB; Python only builds the SQL and walks the file list.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from warehouse.contracts import CONTRACTS, LINEAGE_COLUMNS, SQL_TYPES, Column, TableContract

AUDIT_SCHEMA = "audit"
LEDGER_TABLE = f"{AUDIT_SCHEMA}.ingest_ledger"
QUARANTINE_TABLE = f"{AUDIT_SCHEMA}.quarantine"

FILE_EXTENSIONS = {"csv": (".csv",), "jsonl": (".jsonl", ".ndjson")}
PARQUET_EXTENSIONS = (".parquet",)

AUDIT_DDL = f"""
create schema if not exists {AUDIT_SCHEMA};
create table if not exists {LEDGER_TABLE} (
    source_table varchar not null,
    source_file varchar not null,
    file_sha256 varchar not null,
    file_bytes bigint,
    rows_read bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    status varchar not null,          -- loaded | failed
    message varchar,
    extra_columns varchar[],
    loaded_at timestamp not null,
    run_id varchar
);
-- rows identical to a row loaded before (a corrected file delivered again): neither loaded nor rejected
alter table {LEDGER_TABLE} add column if not exists rows_already_loaded bigint default 0;
create table if not exists {QUARANTINE_TABLE} (
    source_table varchar not null,
    source_file varchar not null,
    source_row bigint,                -- 1-based data record number in the file
    file_sha256 varchar not null,
    stage varchar not null,           -- ingest
    reason_kind varchar not null,     -- first reason's kind, for aggregation
    reason varchar not null,          -- every reason, '; '-separated
    raw_record varchar,               -- the row as delivered (JSON object or the raw line)
    quarantined_at timestamp not null,
    run_id varchar
);
"""


class LandingFileError(Exception):
    """A file that cannot be loaded at all (missing required column, unreadable)."""


class EmptyLandingFile(Exception):
    """A 0-byte file: recorded in the ledger with 0 rows, not an error."""


@dataclass
class FileResult:
    """What happened to one landing file."""

    source_table: str
    source_file: str
    file_sha256: str
    status: str  # loaded | skipped | failed
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_already_loaded: int = 0
    extra_columns: list[str] = field(default_factory=list)
    message: str | None = None


@dataclass
class IngestReport:
    """Per-table and per-file outcome of one ingest run."""

    files: list[FileResult] = field(default_factory=list)

    def for_table(self, qualified_name: str) -> list[FileResult]:
        return [f for f in self.files if f.source_table == qualified_name]

    @property
    def failures(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def totals(self, qualified_name: str) -> dict[str, int]:
        files = self.for_table(qualified_name)
        return {
            "files_loaded": sum(f.status == "loaded" for f in files),
            "files_skipped": sum(f.status == "skipped" for f in files),
            "files_failed": sum(f.status == "failed" for f in files),
            "rows_read": sum(f.rows_read for f in files),
            "rows_loaded": sum(f.rows_loaded for f in files),
            "rows_quarantined": sum(f.rows_quarantined for f in files),
            "rows_already_loaded": sum(f.rows_already_loaded for f in files),
        }


def ensure_raw_tables(con: duckdb.DuckDBPyConnection, contracts: Iterable[TableContract] = CONTRACTS) -> None:
    """Create the audit tables and every raw table (empty when its source has no files)."""
    con.execute(AUDIT_DDL)
    for contract in contracts:
        cols = [f"{c.name} {SQL_TYPES[c.type]}" for c in contract.columns]
        cols += [f"{name} {type_}" for name, type_ in LINEAGE_COLUMNS]
        con.execute(f"create schema if not exists {contract.source}")
        con.execute(f"create table if not exists {contract.qualified_name} ({', '.join(cols)})")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def landing_files(landing_dir: Path, contract: TableContract) -> list[Path]:
    """The table's files in a stable order (sorted by relative path)."""
    folder = landing_dir / contract.landing_path
    if not folder.is_dir():
        return []
    extensions = FILE_EXTENSIONS[contract.file_format] + PARQUET_EXTENSIONS
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(extensions))


def ingest_landing(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    *,
    run_id: str | None = None,
    contracts: Iterable[TableContract] = CONTRACTS,
) -> IngestReport:
    """Load every new file of every contract table; never raises for bad rows or bad files.

    File-level failures are recorded in the ledger and in the report; the caller decides whether
    they block the run.
    """
    ensure_raw_tables(con)
    report = IngestReport()
    for contract in contracts:
        for path in landing_files(landing_dir, contract):
            report.files.append(_ingest_file(con, landing_dir, path, contract, run_id))
    return report


def _ingest_file(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    path: Path,
    contract: TableContract,
    run_id: str | None,
) -> FileResult:
    rel = path.relative_to(landing_dir).as_posix()
    sha = sha256_file(path)
    result = FileResult(contract.qualified_name, rel, sha, status="loaded")
    already = con.execute(
        f"select count(*) from {LEDGER_TABLE} where source_table = ? and file_sha256 = ? and status = 'loaded'",
        [contract.qualified_name, sha],
    ).fetchone()[0]
    if already:
        result.status = "skipped"
        result.message = "already loaded (same SHA-256)"
        return result

    con.execute("begin transaction")
    try:
        header = _read_into_text_table(con, path, contract)
        missing = [c for c in contract.required_columns if c not in header]
        if missing:
            hint = next(
                (f"; the file looks '{d}'-delimited, landing CSV must be comma-delimited"
                 for d in (";", "\t", "|") if len(header) == 1 and d in header[0]),
                "",
            )
            raise LandingFileError(
                f"{rel}: required column(s) {', '.join(missing)} missing for {contract.qualified_name} "
                f"(found: {', '.join(header) or 'no columns'}){hint}"
            )
        result.extra_columns = [h for h in header if h not in contract.column_names]
        _validate_and_load(con, contract, header, rel, sha, run_id, result)
        _write_ledger(con, result, path.stat().st_size, run_id)
        con.execute("commit")
    except EmptyLandingFile as exc:
        con.execute("rollback")
        result.message = str(exc)
        _write_ledger(con, result, path.stat().st_size, run_id)
    except (LandingFileError, duckdb.Error, UnicodeDecodeError, OSError) as exc:
        con.execute("rollback")
        result.status = "failed"
        result.message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        result.rows_read = result.rows_loaded = result.rows_quarantined = result.rows_already_loaded = 0
        _write_ledger(con, result, path.stat().st_size, run_id)
    finally:
        for tmp in ("_landing_text", "_landing_rejects", "_landing_reject_scans", "_landing_checked"):
            con.execute(f"drop table if exists {tmp}")
    return result


def _csv_header(path: Path) -> list[str]:
    """Header names, lower-cased and stripped (BOM removed); read with Python's csv for one line."""
    with path.open("rb") as fh:
        first = fh.readline()
    text = first.decode("utf-8-sig", errors="replace")
    row = next(csv.reader(io.StringIO(text)), [])
    return [h.strip().lower() for h in row]


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _read_into_text_table(con: duckdb.DuckDBPyConnection, path: Path, contract: TableContract) -> list[str]:
    """Create temp table `_landing_text` (contract columns as text + `_source_row`) and
    `_landing_rejects` (rows that could not be parsed). Returns the file's lower-cased header."""
    p = _sql_str(str(path))
    name = path.name.lower()
    if name.endswith(PARQUET_EXTENSIONS):
        header = [r[0].lower() for r in con.execute(f"describe select * from read_parquet({p})").fetchall()]
        known = [h for h in header if h in contract.column_names]
        cols = ", ".join(f'cast("{h}" as varchar) as {h}' for h in known) if known else "null as _none"
        con.execute(
            f"create temp table _landing_text as select {cols}, file_row_number + 1 as _source_row "
            f"from read_parquet({p}, file_row_number = true)"
        )
        con.execute("create temp table _landing_rejects (source_row bigint, raw_record varchar, reason varchar)")
        return header

    if contract.file_format == "jsonl":
        # One record per line; parse with DuckDB's JSON functions so a broken line is kept, not dropped.
        con.execute(
            f"""create temp table _landing_lines as
                select _source_row, line,
                       coalesce(case when json_valid(line) then json_type(line) = 'OBJECT' end, false) as is_object
                from (select row_number() over () as _source_row, line
                from read_csv({p}, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\x01',
                              quote = '', escape = '', auto_detect = false, strict_mode = false))"""
        )
        keys = con.execute(
            "select distinct unnest(json_keys(line)) from _landing_lines "
            "where is_object"
        ).fetchall()
        header = sorted(k[0].lower() for k in keys)
        present = [c for c in contract.column_names if c in header]
        cols = ", ".join(
            f"case when is_object then json_extract_string(line, '$.{c}') end as {c}" for c in present
        ) or "null as _none"
        con.execute(f"create temp table _landing_text as select {cols}, _source_row from _landing_lines where is_object")
        con.execute(
            """create temp table _landing_rejects as
               select _source_row as source_row, line as raw_record,
                      'parse_error: not a JSON object' as reason
               from _landing_lines
               where not is_object and trim(coalesce(line, '')) <> ''"""
        )
        con.execute("drop table _landing_lines")
        return header

    header = _csv_header(path)
    if not header or header == [""]:
        raise EmptyLandingFile("empty file (no header, no rows): nothing to load")
    names = []
    for i, h in enumerate(header):  # unique, SQL-safe names for every physical column
        names.append(h if h in contract.column_names and h not in names else f"_extra_{i}")
    columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
    con.execute(
        f"""create temp table _landing_raw as
            select *, row_number() over () as _ordinal
            from read_csv({p}, columns = {columns}, header = true, delim = ',', quote = '"', escape = '"',
                          auto_detect = false, store_rejects = true, rejects_table = '_landing_rejects_raw',
                          rejects_scan = '_landing_reject_scans')"""
    )
    # DuckDB reports a rejected record's `line` as record number + 1 (the header is line 1). A clean
    # row's record number is its ordinal among clean rows plus the rejected records before it.
    con.execute(
        """create temp table _landing_rejects as
           select line - 1 as source_row, any_value(csv_line) as raw_record,
                  'parse_error: ' || string_agg(distinct lower(error_type) || ' (' || error_message || ')', '; ') as reason
           from _landing_rejects_raw group by line"""
    )
    present = [n for n in names if not n.startswith("_extra_")]
    cols = ", ".join(f"t.{c}" for c in present) or "null as _none"
    if con.execute("select count(*) from _landing_rejects").fetchall()[0][0]:
        # rejected record j (in file order) has gap_j = its record number - j clean rows before it; a clean
        # row with ordinal i follows every reject with gap_j < i. One ASOF join instead of a count per row.
        con.execute(
            """create temp table _landing_reject_gaps as
               select gap, max(j) as rejects_before
               from (select source_row - row_number() over (order by source_row) as gap,
                            row_number() over (order by source_row) as j from _landing_rejects)
               group by gap"""
        )
        con.execute(
            f"""create temp table _landing_text as
                select {cols}, t._ordinal + coalesce(g.rejects_before, 0) as _source_row
                from _landing_raw t asof left join _landing_reject_gaps g on t._ordinal > g.gap"""
        )
        con.execute("drop table _landing_reject_gaps")
    else:
        con.execute(f"create temp table _landing_text as select {cols}, t._ordinal as _source_row from _landing_raw t")
    con.execute("drop table _landing_raw; drop table if exists _landing_rejects_raw")
    return header


def _typed_expr(col: Column, present: bool) -> str:
    """SQL that turns the text value into the contract type (NULL when empty or unparsable)."""
    if not present:
        return f"cast(null as {SQL_TYPES[col.type]})"
    text = f"nullif(trim({col.name}), '')"
    if col.type == "text":
        return text
    if col.type == "boolean":
        return (
            f"case lower({text}) when 'true' then true when 't' then true when '1' then true when 'yes' then true "
            f"when 'false' then false when 'f' then false when '0' then false when 'no' then false end"
        )
    return f"try_cast({text} as {SQL_TYPES[col.type]})"


def _reason_exprs(contract: TableContract, header: list[str]) -> list[str]:
    """One SQL expression per rule, each yielding a reason string or NULL."""
    reasons: list[str] = []
    for col in contract.columns:
        present = col.name in header
        text = f"nullif(trim({col.name}), '')" if present else "null"
        typed = f"_t_{col.name}"
        if col.required:
            reasons.append(f"case when {text} is null then 'missing_required: {col.name} is empty' end")
        if present and col.type != "text":
            reasons.append(
                f"case when {text} is not null and {typed} is null "
                f"then 'type_error: {col.name}=' || left({col.name}, 60) || ' is not a {col.type}' end"
            )
        if col.accepted:
            values = ", ".join(_sql_str(v) for v in col.accepted)
            reasons.append(
                f"case when {typed} is not null and {typed} not in ({values}) "
                f"then 'invalid_value: {col.name}=' || left({typed}, 60) || ' not in accepted values' end"
            )
        if col.minimum is not None:
            reasons.append(
                f"case when {typed} < {col.minimum} "
                f"then '{col.minimum_kind}: {col.name}=' || {typed} || ' below {col.minimum:g}' end"
            )
        if col.maximum is not None:
            reasons.append(
                f"case when {typed} > {col.maximum} "
                f"then 'invalid_value: {col.name}=' || {typed} || ' above {col.maximum:g}' end"
            )
        if col.not_future:
            reasons.append(
                f"case when {typed} > current_timestamp::timestamp + interval 1 day "
                f"then 'future_date: {col.name}=' || {typed} || ' is in the future' end"
            )
    for ref in contract.references:
        typed = f"_t_{ref.column}"
        reasons.append(
            f"case when {typed} is not null and not exists (select 1 from {ref.target_table} r "
            f"where r.{ref.target_column} = {typed}) "
            f"then '{ref.kind}: {ref.column}=' || {typed} || ' not found in {ref.target_table}' end"
        )
    for predicate, kind, message in contract.row_rules:
        typed_pred = predicate.format(**{c.name: f"_t_{c.name}" for c in contract.columns})
        reasons.append(f"case when not coalesce({typed_pred}, true) then '{kind}: {message}' end")
    return reasons


def _validate_and_load(
    con: duckdb.DuckDBPyConnection,
    contract: TableContract,
    header: list[str],
    rel: str,
    sha: str,
    run_id: str | None,
    result: FileResult,
) -> None:
    present = {c.name for c in contract.columns if c.name in header}
    typed_cols = ", ".join(f"{_typed_expr(c, c.name in present)} as _t_{c.name}" for c in contract.columns)
    raw_json = "to_json(struct_pack(" + ", ".join(f"{c} := {c}" for c in sorted(present)) + "))::varchar" if present else "'{}'"
    pk_typed = ", ".join(f"_t_{k}" for k in contract.primary_key)
    pk_join = " and ".join(f"r.{k} = c._t_{k}" for k in contract.primary_key)
    # A row equal in every contract column to a loaded row was loaded before (corrected re-delivery).
    same_row = " and ".join(f"r.{c} is not distinct from checked._t_{c}" for c in contract.column_names)
    reasons = ", ".join(_reason_exprs(contract, header))
    con.execute(
        f"""create temp table _landing_checked as
            with typed as (
                select *, {typed_cols}, {raw_json} as _raw from _landing_text
            ), checked as (
                select *, list_filter([{reasons}], lambda x: x is not null) as _reasons,
                       row_number() over (partition by {pk_typed} order by _source_row) as _pk_rank
                from typed
            )
            select c.*,
                   case when len(c._reasons) = 0 and (c._pk_rank > 1 or (exists (
                            select 1 from {contract.qualified_name} r where {pk_join}) and not c._already_loaded))
                        then ['duplicate_key: primary key ({", ".join(contract.primary_key)}) already loaded with other values or repeated in file']
                        else c._reasons end as _all_reasons
            from (select *, exists (select 1 from {contract.qualified_name} r where {same_row}) as _already_loaded
                  from checked) c"""
    )
    loaded_at = "current_timestamp::timestamp"
    target_cols = ", ".join(contract.column_names + tuple(n for n, _ in LINEAGE_COLUMNS))
    source_cols = ", ".join(f"_t_{c}" for c in contract.column_names)
    con.execute(
        f"""insert into {contract.qualified_name} ({target_cols})
            select {source_cols}, ?, _source_row, ?, {loaded_at}
            from _landing_checked where len(_all_reasons) = 0 and not _already_loaded order by _source_row""",
        [rel, sha],
    )
    con.execute(
        f"""insert into {QUARANTINE_TABLE}
            select ?, ?, _source_row, ?, 'ingest', split_part(_all_reasons[1], ':', 1),
                   array_to_string(_all_reasons, '; '), _raw, {loaded_at}, ?
            from _landing_checked where len(_all_reasons) > 0
            union all
            select ?, ?, source_row, ?, 'ingest', 'parse_error', reason, raw_record, {loaded_at}, ?
            from _landing_rejects""",
        [contract.qualified_name, rel, sha, run_id] * 2,
    )
    loaded, already, quarantined = con.execute(
        "select count(*) filter (where len(_all_reasons) = 0 and not _already_loaded), "
        "count(*) filter (where len(_all_reasons) = 0 and _already_loaded), count(*) filter (where len(_all_reasons) > 0) "
        "from _landing_checked"
    ).fetchall()[0]
    rejects = con.execute("select count(*) from _landing_rejects").fetchall()[0][0]
    result.rows_loaded, result.rows_already_loaded = loaded, already
    result.rows_quarantined = quarantined + rejects
    result.rows_read = result.rows_loaded + result.rows_quarantined + result.rows_already_loaded
    required_present = [c for c in contract.required_columns if c in present]
    empty_required = []
    if required_present and result.rows_read > rejects:
        filled = con.execute(
            "select " + ", ".join(f"count(nullif(trim({c}), ''))" for c in required_present) + " from _landing_text"
        ).fetchall()[0]
        empty_required = [c for c, n in zip(required_present, filled, strict=True) if n == 0]
    if empty_required:
        result.message = f"required column(s) {', '.join(empty_required)} empty in every row"


def _write_ledger(con: duckdb.DuckDBPyConnection, r: FileResult, size: int, run_id: str | None) -> None:
    con.execute(
        f"""insert into {LEDGER_TABLE} (source_table, source_file, file_sha256, file_bytes, rows_read, rows_loaded,
                rows_quarantined, status, message, extra_columns, loaded_at, run_id, rows_already_loaded)
            values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp::timestamp, ?, ?)""",
        [
            r.source_table,
            r.source_file,
            r.file_sha256,
            size,
            r.rows_read,
            r.rows_loaded,
            r.rows_quarantined,
            r.status,
            r.message,
            r.extra_columns,
            run_id,
            r.rows_already_loaded,
        ],
    )


def quarantine_summary(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(source_table, reason_kind, rows) for every quarantined kind, largest first."""
    return con.execute(
        f"select source_table, reason_kind, count(*) from {QUARANTINE_TABLE} group by all order by 3 desc, 1, 2"
    ).fetchall()


def describe_failures(report: IngestReport) -> str:
    return "\n".join(f"- {f.source_file}: {f.message}" for f in report.failures)


__all__ = [
    "IngestReport",
    "FileResult",
    "LandingFileError",
    "ensure_raw_tables",
    "ingest_landing",
    "quarantine_summary",
    "describe_failures",
]
