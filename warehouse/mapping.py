"""Source mappings: a user's own export files -> contract-shaped landing files, declared in YAML.

A source mapping lives in the user's project (never in the product). It says how the files of one
export become rows of one or more landing-contract tables (`warehouse.contracts`). The mapping only
*reshapes text*: it renames, combines, maps and reformats values, and writes one Parquet file per
target table (every column VARCHAR) that the ingest then validates, casts and quarantines as for any
other delivery. So a mapping never rejects or drops a row, and never rounds: a value it cannot
convert (a timestamp not matching the format, a status missing from a value map) passes through as
the original text, and the ingest rejects it with its reason (`type_error`, `invalid_value`, ...).
`check_mapping` counts such values before anything is written.

YAML schema
-----------
```yaml
name: shop_orders              # [a-z][a-z0-9_]*: the files are found under <landing>/<name>/ (any depth;
                               #   *.csv, *.parquet, *.jsonl, *.ndjson; temporary/hidden names skipped);
                               #   not a contract source name (erp, crm, support, events)
description: free text         # optional
format:                        # optional; the reader is chosen by the file's extension
  type: csv                    #   csv | parquet | jsonl: when given, every file must be of that type
  delimiter: ";"               #   csv: one character (default ",")
  header: true                 #   csv: false -> the columns are named column1, column2, ... (default true)
  encoding: utf-8              #   csv: utf-8 (a BOM is skipped) | utf-16 | latin-1 (default utf-8)
time_zone: Europe/Berlin       # zone of timestamps WITHOUT offset (default: the project's time_zone; checked
                               #   against DuckDB's pg_timezone_names()); an offset or zone in a value is honoured
decimal_comma: true            # `number: true` columns read "1.234,56" as 1234.56 (default false: "1,234.56")
alternatives:                  # optional: a source column name used below -> the other names it has in
  Invoice: [InvoiceNo]         #   some files; the first name present in a file is used
tables:
  erp.orders:                  # a contract table (warehouse.contracts.CONTRACTS_BY_NAME)
    one_row_per: [Order Number]   # optional: one output row per distinct value of these source columns
                                  #   (compared as trimmed text; empty values form a group of their own)
    columns:                   # contract columns; every required one must be mapped, others may be left out
      order_id: {from: Order Number}                   # the source value (text, see "reading" below)
      erp_account_id: {template: "shop:{Customer Email}"}   # literals + {source column} ({{ and }} for braces);
                                                       #   null when a referenced value is null/empty
      ordered_at: {from: Order Date, timestamp: "%d/%m/%Y %H:%M", agg: min}
      channel: {value: web}                            # a constant
      status: {from: Status, values: {Paid: completed, Refunded: returned}, else: cancelled}
      currency: {from: Currency, default: EUR}
  erp.order_lines:
    columns:
      order_line_id: {template: "{Order Number}-{#}", number_within: [Order Number], pad: 4}
      unit_price: {from: Total, number: true}
      ...
```
Column keys: exactly one of `from` (a source column, or a list of names: the first present in the
file), `template` or `value`. With `from`, at most one conversion:
- `values: {source: target}`: exact match on the trimmed value; unmatched values pass through unless
  `else:` is given;
- `when: [{matches: <regex>, then: <text>}, ...]`: the first case whose regex matches (anywhere in
  the trimmed value: anchor with ^ and $) gives the value; else as for `values`. Regexes must compile
  in both Python `re` and DuckDB (RE2: no look-arounds, no back-references);
- `timestamp: <strptime format>` or `timestamp: auto`: output ISO text in UTC, `YYYY-MM-DDTHH:MM:SS`
  (`.ffffff` appended only when there are fractions of a second). `auto`, and any value the format does
  not match, is read as ISO 8601 (`2010-07-01 10:00[:00[.ffffff]]`, `T` or space); a value with an
  offset or zone (`Z`, `+05:00`, `+0500`, `UTC`, ` Europe/Paris`; or a format with `%z`/`%Z`) is that
  instant, one without is local time in `time_zone`. A local time that occurs twice (clocks going back)
  is read in standard time, the later instant; one skipped by clocks going forward is read with the
  offset before the change (ICU's rules). Anything else passes through unchanged (the ingest reads it
  as its own ISO rules allow, else rejects it as `type_error`);
- `number: true`: text numbers lose their thousands separators and get a decimal point
  (`decimal_comma`); a value that is not such a number passes through unchanged. Native numbers
  (Parquet, JSON numbers) already have a decimal point and are left as they are.
Further keys: `else:` (with values/when), `default: <text>` (used when the result is null: an empty
or missing source value, or a template with a null part), `agg: first|min|max` (grouped tables only,
default first), `number_within` and `pad` (templates with `{#}`). Plain YAML scalars stay text as
written (`1.10`, `Yes`, `2010-01-01` are not a number, a boolean, a date); a key given twice is refused.

Grouping (`one_row_per`): each column takes the value of the group's FIRST source row in file order
(null included) unless `agg: min|max` is given. min/max compare timestamps as instants, `number: true`
columns as numbers and other columns as text; when a value of the group could not be converted, the
first such value is taken instead (so the ingest rejects the group rather than the mapping hiding it).
`{#}` is the row's 1-based position within its `number_within` group in file order (no
`number_within`: within the file), zero-padded to `pad` digits (longer numbers are never cut); not
available in grouped tables.

Reading
-------
Every source value becomes text, trimmed, an empty one null. `_record` numbers the records from 1
(CSV: the header and blank lines are not records; JSONL: non-blank lines). CSV is read as text as delivered
(strict: a record DuckDB cannot parse, a quote that swallows lines, or a record with surplus fields
raise `MappingError` naming the line; nothing is written). Parquet columns keep their native types until
they are rendered as text: VARCHAR as is; DOUBLE/FLOAT as DuckDB's shortest text that reads back as the
same number (2.95 -> '2.95', never '2.9500000000000002'), whole numbers below 2^53 without '.0'
(13085.0 -> '13085', so an id stored as a double reads as an id); DECIMAL with its scale ('2.950'),
a whole one without it (12346.0 -> '12346');
TIMESTAMP as `YYYY-MM-DDTHH:MM:SS[.ffffff]` (local: `timestamp:` converts it, a plain `from` does not);
TIMESTAMP WITH TIME ZONE as that in UTC plus '+00:00'; DATE as `YYYY-MM-DD`; BOOLEAN as true/false;
anything else as DuckDB casts it to VARCHAR. JSONL: one JSON object per line, values as
`json_extract_string` gives them (numbers in their shortest form, nested values as JSON text); a key
holding only JSON numbers counts as native numbers. Column names are matched exactly, else
case-insensitively (and ignoring surrounding spaces) when that is unambiguous.

Output
------
`map_file` writes `out_dir/<schema>/<table>/<mapping name>__<file stem>.parquet` (`map_landing`: the
path below `<landing>/<name>/` joined by `__`), every table under a temporary name first, renamed once
all are written. Rows in file order (grouped tables: by each group's first record), only the mapped
contract columns; for ungrouped tables row n is record n of the source file, so a quarantine's
`source_row` points back at the user's record. Mapping the same file again gives byte-identical files
and leaves them untouched (the ingest's stat cache still skips them); a file with other content is
refused unless `overwrite=True`, since the ingest fails a loaded path whose content changed. Each file
is mapped on its own: a record delivered in two files (overlapping exports) reaches the ingest twice,
which takes it as already loaded when equal and quarantines it as `duplicate_key` otherwise.

API: `load_mapping` (parse + validate), `mapped_select` (the SQL of one table), `map_file`,
`map_landing` (every file of the mapping under a landing folder), `check_mapping` (counts, writes
nothing). Security: user-supplied names, constants, regexes, formats and zones reach SQL only as
quoted identifiers or escaped literals (`quote_identifier`, `quote_literal`), zones and regexes are
validated first; there are no user SQL expressions.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import yaml

from warehouse.connections import OFFLINE_CONFIG
from warehouse.contracts import CONTRACTS, CONTRACTS_BY_NAME
from warehouse.ingest import is_landing_name, sha256_file

RECORD = "_record"  # the source relation's 1-based record number column
FORMATS = {"csv": (".csv",), "parquet": (".parquet",), "jsonl": (".jsonl", ".ndjson")}
# DuckDB's built-in CSV encodings -> the Python codec reading the header the same way
CSV_ENCODINGS = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "latin-1": "latin-1"}
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
# DuckDB reads a path with these as a glob pattern
GLOB_CHARACTERS = ("*", "?", "[", "]", "{", "}")
RESERVED_NAMES = {c.source for c in CONTRACTS} | {"audit"}
AGGREGATES = ("first", "min", "max")
# an ISO 8601 date-time ending in an offset or a zone name: read as an instant, not as local time
_ZONED = (
    r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"
    r"\s*([Zz]|[+-][0-9]{2}(:?[0-9]{2}){0,2}|[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*)$"
)
_MAX_EXACT_INTEGER = 2**53  # doubles below it that are whole numbers are written without '.0'


class MappingError(ValueError):
    """A mapping file that cannot be used, or a source file it cannot map; the message names the
    mapping file, the table and the column or key at fault (and the source file and line)."""


@dataclass(frozen=True)
class FileFormat:
    type: str | None = None  # csv | parquet | jsonl; None: by extension
    delimiter: str = ","
    header: bool = True
    encoding: str = "utf-8"


@dataclass(frozen=True)
class Case:
    """`when` case: a value the regex matches (re.search semantics) becomes `then`."""

    matches: str
    then: str


@dataclass(frozen=True)
class ColumnMapping:
    """How one contract column is made: from a source column, a template, or a constant."""

    column: str
    source: tuple[str, ...] = ()  # `from`: names to try, first present wins
    template: tuple[tuple[str, str], ...] | None = None  # parts: ("text", literal) | ("column", name) | ("#", "")
    value: str | None = None
    values: tuple[tuple[str, str], ...] | None = None
    cases: tuple[Case, ...] | None = None
    otherwise: str | None = None  # `else`
    timestamp: str | None = None  # "auto" or a strptime format
    timestamp_zoned: bool = False  # the format reads an offset/zone (%z, %Z)
    number: bool = False
    default: str | None = None
    agg: str = "first"
    number_within: tuple[str, ...] = ()
    pad: int | None = None

    @property
    def numbered(self) -> bool:
        return self.template is not None and any(kind == "#" for kind, _ in self.template)


@dataclass(frozen=True)
class TableMapping:
    table: str  # "schema.table"
    columns: tuple[ColumnMapping, ...]
    one_row_per: tuple[str, ...] | None = None

    @property
    def schema(self) -> str:
        return self.table.split(".")[0]

    @property
    def name(self) -> str:
        return self.table.split(".")[1]


@dataclass(frozen=True)
class SourceMapping:
    """A validated mapping file."""

    path: Path
    name: str
    tables: tuple[TableMapping, ...]
    format: FileFormat = field(default_factory=FileFormat)
    time_zone: str = "UTC"
    decimal_comma: bool = False
    alternatives: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str | None = None

    def table(self, name: str) -> TableMapping:
        for t in self.tables:
            if t.table == name:
                return t
        raise MappingError(f"{self.path}: table {name} is not mapped (mapped: {', '.join(self.table_names)})")

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(t.table for t in self.tables)


@dataclass(frozen=True)
class MappedFile:
    """One written landing file."""

    path: Path
    rows_written: int
    rows_read: int  # records of the source file


@dataclass(frozen=True)
class MappingCheck:
    """What mapping one file into one table would give (`check_mapping`); nothing written."""

    file: Path
    table: str
    source_rows: int
    mapped_rows: int
    unconverted: dict[str, int]  # contract column -> source values passed through unconverted
    examples: dict[str, str]  # contract column -> the first such value
    empty_required: dict[str, int]  # required contract column -> mapped rows where it is null


# ---------------------------------------------------------------------------------------------------
# SQL quoting: the only way user text reaches SQL


def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier (inner quotes doubled)."""
    if "\x00" in name:
        raise MappingError(f"identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A single-quoted SQL string literal (inner quotes doubled; DuckDB does not read backslash escapes)."""
    if "\x00" in value:
        raise MappingError(f"text {value!r} contains a NUL character")
    return "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------------
# Loading and validating


class _TextLoader(yaml.SafeLoader):
    """YAML where plain scalars stay text (`1.10` is '1.10', `Yes` is 'Yes', `2010-01-01` is not a date);
    only `~`/`null`/empty are null (and `<<` merges). Duplicate keys are refused (`_construct_mapping`)."""


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _TextLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise MappingError(
                f"line {key_node.start_mark.line + 1}: key {key!r} given twice (first on line {seen[key]})"
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_TextLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Where:
    """Where in the mapping file a value is: builds the messages of `MappingError`."""

    def __init__(self, path: Path, *parts: str) -> None:
        self.path, self.parts = path, parts

    def __truediv__(self, part: str) -> _Where:
        return _Where(self.path, *self.parts, part)

    def error(self, problem: str) -> MappingError:
        return MappingError(f"{self.path}: {' '.join(self.parts) + ': ' if self.parts else ''}{problem}")


def _keys(obj: Any, where: _Where, allowed: Iterable[str], required: Iterable[str] = ()) -> dict:
    if not isinstance(obj, dict):
        raise where.error(f"expected a mapping of keys, got {_kind(obj)}")
    allowed = tuple(allowed)
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise where.error(f"unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
    missing = [k for k in required if k not in obj]
    if missing:
        raise where.error(f"missing key {missing[0]!r}")
    return obj


def _kind(obj: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(obj), f"{obj!r}")


def _text(obj: Any, where: _Where, *, empty: bool = True) -> str:
    if not isinstance(obj, str):
        raise where.error(f"expected text, got {_kind(obj)}" + (" (write '' for empty text)" if obj is None else ""))
    if "\x00" in obj:
        raise where.error("contains a NUL character")
    if not empty and not obj.strip():
        raise where.error("must not be empty")
    return obj


def _bool(obj: Any, where: _Where) -> bool:
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, str) and obj.lower() in ("true", "false"):
        return obj.lower() == "true"
    raise where.error(f"expected true or false, got {_kind(obj)}")


def _names(obj: Any, where: _Where, *, allow_empty: bool = False) -> tuple[str, ...]:
    items = obj if isinstance(obj, list) else [obj]
    if not items and not allow_empty:
        raise where.error("expected at least one source column name")
    return tuple(_text(n, where, empty=False) for n in items)


class _Checker:
    """A throwaway in-memory DuckDB: what DuckDB itself accepts (regexes, zones, strptime formats)."""

    def __init__(self) -> None:
        self.con = duckdb.connect(config=OFFLINE_CONFIG)
        self._zones: set[str] | None = None

    def zone(self, name: str, where: _Where) -> str:
        if self._zones is None:
            self._zones = {z for (z,) in self.con.execute("select name from pg_timezone_names()").fetchall()}
        if name not in self._zones:
            close = sorted(z for z in self._zones if z.lower() == name.lower())
            hint = f" (did you mean {close[0]}?)" if close else " (an IANA name such as Europe/Berlin, or UTC)"
            raise where.error(f"unknown time zone {name!r}{hint}")
        return name

    def regex(self, pattern: str, where: _Where) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise where.error(f"invalid regular expression {pattern!r}: {exc}") from None
        try:
            self.con.execute(f"select regexp_matches('', {quote_literal(pattern)})")
        except duckdb.Error as exc:
            raise where.error(f"regular expression {pattern!r} not accepted by DuckDB (RE2): {exc}") from None
        return pattern

    def strptime(self, fmt: str, where: _Where) -> bool:
        """Whether the format reads an offset or zone; raises for a format DuckDB refuses."""
        if "%" not in fmt:
            raise where.error(f"timestamp format {fmt!r} has no % directive (or write `timestamp: auto`)")
        try:
            (type_,) = self.con.execute(f"select typeof(try_strptime('', {quote_literal(fmt)}))").fetchone()
        except duckdb.Error as exc:
            raise where.error(f"invalid timestamp format {fmt!r}: {str(exc).splitlines()[0]}") from None
        return type_ == "TIMESTAMP WITH TIME ZONE"


def _parse_template(text: str, where: _Where) -> tuple[tuple[str, str], ...]:
    """Split a template into literal text, {source column} and {#} parts; {{ and }} are braces."""
    parts: list[tuple[str, str]] = []
    literal, i = "", 0
    while i < len(text):
        c = text[i]
        if c in "{}" and text[i : i + 2] == c * 2:
            literal += c
            i += 2
        elif c == "{":
            end = text.find("}", i)
            name = text[i + 1 : end] if end > 0 else ""
            if end < 0 or "{" in name or not name.strip():
                raise where.error(f"template {text!r}: '{{' at position {i} does not open a {{column}} (write {{{{)")
            if literal:
                parts.append(("text", literal))
                literal = ""
            parts.append(("#", "") if name == "#" else ("column", name))
            i = end + 1
        elif c == "}":
            raise where.error(f"template {text!r}: unmatched '}}' at position {i} (write }}}})")
        else:
            literal += c
            i += 1
    if literal:
        parts.append(("text", literal))
    return tuple(parts)


_COLUMN_KEYS = (
    "from",
    "template",
    "value",
    "values",
    "when",
    "else",
    "timestamp",
    "number",
    "default",
    "agg",
    "number_within",
    "pad",
)


def _parse_column(column: str, spec: Any, where: _Where, grouped: bool, checker: _Checker) -> ColumnMapping:
    spec = _keys(spec, where, _COLUMN_KEYS)
    sources = [k for k in ("from", "template", "value") if k in spec]
    if len(sources) != 1:
        raise where.error(
            "give exactly one of from, template, value" + (f" (found {', '.join(sources)})" if sources else "")
        )
    conversions = [k for k in ("values", "when", "timestamp", "number") if k in spec]
    if conversions and "from" not in spec:
        raise where.error(f"{conversions[0]} needs from")
    if len(conversions) > 1:
        raise where.error(f"give at most one of values, when, timestamp, number (found {', '.join(conversions)})")
    if "else" in spec and not ({"values", "when"} & set(spec)):
        raise where.error("else needs values or when")
    if "value" in spec and len(spec) > 1:
        raise where.error(f"a constant (value) takes no other key (found {', '.join(k for k in spec if k != 'value')})")
    if "agg" in spec and not grouped:
        raise where.error("agg needs one_row_per on the table")
    kw: dict[str, Any] = {}
    if "from" in spec:
        kw["source"] = _names(spec["from"], where / "from")
    if "template" in spec:
        kw["template"] = _parse_template(_text(spec["template"], where / "template"), where / "template")
    if "value" in spec:
        kw["value"] = _text(spec["value"], where / "value")
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, dict) or not values:
            raise (where / "values").error(f"expected a mapping of source value: target value, got {_kind(values)}")
        for k in values:
            if not isinstance(k, str):
                raise (where / "values").error(
                    f"key {k!r} is not text" + (" (an empty source value is null: use default)" if k is None else "")
                )
        kw["values"] = tuple((k, _text(v, where / "values" / repr(k))) for k, v in values.items())
    if "when" in spec:
        cases = spec["when"]
        if not isinstance(cases, list) or not cases:
            raise (where / "when").error(f"expected a list of {{matches: <regex>, then: <text>}}, got {_kind(cases)}")
        parsed = []
        for i, case in enumerate(cases, 1):
            w = where / f"when case {i}"
            case = _keys(case, w, ("matches", "then"), ("matches", "then"))
            pattern = checker.regex(_text(case["matches"], w / "matches", empty=False), w / "matches")
            parsed.append(Case(pattern, _text(case["then"], w / "then")))
        kw["cases"] = tuple(parsed)
    if "else" in spec:
        kw["otherwise"] = _text(spec["else"], where / "else")
    if "timestamp" in spec:
        fmt = _text(spec["timestamp"], where / "timestamp", empty=False)
        kw["timestamp"] = fmt
        if fmt != "auto":
            kw["timestamp_zoned"] = checker.strptime(fmt, where / "timestamp")
    if "number" in spec:
        kw["number"] = _bool(spec["number"], where / "number")
    if "default" in spec:
        kw["default"] = _text(spec["default"], where / "default")
    if "agg" in spec:
        agg = _text(spec["agg"], where / "agg")
        if agg not in AGGREGATES:
            raise (where / "agg").error(f"expected one of {', '.join(AGGREGATES)}, got {agg!r}")
        kw["agg"] = agg
    result = ColumnMapping(column, **kw)
    if ("number_within" in spec or "pad" in spec) and not result.numbered:
        raise where.error("number_within and pad need a template with {#}")
    if result.numbered and grouped:
        raise where.error("{#} numbers source rows: not available in a table with one_row_per")
    if "number_within" in spec:
        result = replace(result, number_within=_names(spec["number_within"], where / "number_within", allow_empty=True))
    if "pad" in spec:
        pad = spec["pad"]
        if not (isinstance(pad, str) and pad.isdigit() and 1 <= int(pad) <= 18) and not (
            isinstance(pad, int) and not isinstance(pad, bool) and 1 <= pad <= 18
        ):
            raise (where / "pad").error(f"expected a number of digits from 1 to 18, got {_kind(pad)}")
        result = replace(result, pad=int(pad))
    return result


def parse_mapping(data: Any, path: Path, default_time_zone: str = "UTC") -> SourceMapping:
    """Validate a mapping already read from YAML (`load_mapping`); `path` names it in messages.
    `default_time_zone`: the zone of offset-less timestamps when the mapping names none (the project's)."""
    top = _Where(path)
    data = _keys(data, top, ("name", "description", "format", "time_zone", "decimal_comma", "alternatives", "tables"),
                 ("name", "tables"))  # fmt: skip
    name = _text(data["name"], top / "name")
    if not NAME_PATTERN.fullmatch(name):
        raise (top / "name").error(f"{name!r} is not an identifier [a-z][a-z0-9_]*")
    if name in RESERVED_NAMES:
        raise (top / "name").error(
            f"{name!r} is a landing folder of the contract itself ({', '.join(sorted(RESERVED_NAMES))}): choose another"
        )
    checker = _Checker()
    try:
        fmt = FileFormat()
        if data.get("format") is not None:
            w = top / "format"
            spec = _keys(data["format"], w, ("type", "delimiter", "header", "encoding"))
            type_ = _text(spec["type"], w / "type") if "type" in spec else None
            if type_ is not None and type_ not in FORMATS:
                raise (w / "type").error(f"expected one of {', '.join(FORMATS)}, got {type_!r}")
            delimiter = _text(spec.get("delimiter", ","), w / "delimiter")
            if len(delimiter) != 1 or delimiter in '"\r\n':
                raise (w / "delimiter").error(
                    f"expected one character other than a quote or line break, got {delimiter!r}"
                )
            encoding = _text(spec.get("encoding", "utf-8"), w / "encoding").lower()
            encoding = {"utf8": "utf-8", "utf16": "utf-16", "latin1": "latin-1", "iso-8859-1": "latin-1"}.get(
                encoding, encoding
            )
            if encoding not in CSV_ENCODINGS:
                raise (w / "encoding").error(f"expected one of {', '.join(CSV_ENCODINGS)}, got {encoding!r}")
            header = _bool(spec.get("header", "true"), w / "header")
            fmt = FileFormat(type_, delimiter, header, encoding)
        zone = checker.zone(_text(data.get("time_zone", default_time_zone), top / "time_zone"), top / "time_zone")
        decimal_comma = _bool(data.get("decimal_comma", "false"), top / "decimal_comma")
        alternatives: dict[str, tuple[str, ...]] = {}
        if data.get("alternatives") is not None:
            w = top / "alternatives"
            if not isinstance(data["alternatives"], dict):
                raise w.error(f"expected a mapping of name: [other names], got {_kind(data['alternatives'])}")
            for key, others in data["alternatives"].items():
                alternatives[_text(key, w, empty=False)] = _names(others, w / str(key))
        tables_spec = data["tables"]
        if not isinstance(tables_spec, dict):
            raise (top / "tables").error(f"expected a mapping of contract table: mapping, got {_kind(tables_spec)}")
        if not tables_spec:
            raise (top / "tables").error("map at least one contract table")
        tables = []
        for table, spec in tables_spec.items():
            w = top / f"table {table}"
            if table not in CONTRACTS_BY_NAME:
                raise w.error(f"not a contract table (known: {', '.join(CONTRACTS_BY_NAME)})")
            contract = CONTRACTS_BY_NAME[table]
            spec = _keys(spec, w, ("one_row_per", "columns"), ("columns",))
            one_row_per = _names(spec["one_row_per"], w / "one_row_per") if "one_row_per" in spec else None
            columns_spec = spec["columns"]
            if not isinstance(columns_spec, dict):
                raise (w / "columns").error(
                    f"expected a mapping of contract column: mapping, got {_kind(columns_spec)}"
                )
            columns = []
            for column, cspec in columns_spec.items():
                cw = w / f"column {column}"
                if column not in contract.column_names:
                    raise cw.error(f"not a column of {table} (its columns: {', '.join(contract.column_names)})")
                columns.append(_parse_column(column, cspec, cw, one_row_per is not None, checker))
            unmapped = [c for c in contract.required_columns if c not in columns_spec]
            if unmapped:
                raise w.error(
                    f"required column(s) {', '.join(unmapped)} not mapped (the ingest would refuse every file); "
                    "map them with from, template or value"
                )
            order = {c: i for i, c in enumerate(contract.column_names)}
            columns.sort(key=lambda c: order[c.column])
            tables.append(TableMapping(table, tuple(columns), one_row_per))
        description = data.get("description")
        return SourceMapping(
            path=path,
            name=name,
            tables=tuple(tables),
            format=fmt,
            time_zone=zone,
            decimal_comma=decimal_comma,
            alternatives=alternatives,
            description=_text(description, top / "description") if description is not None else None,
        )
    finally:
        checker.con.close()


def load_mapping(path: Path, default_time_zone: str = "UTC") -> SourceMapping:
    """Read and validate a mapping file; raises `MappingError` naming the file, table and column at fault.
    `default_time_zone`: see `parse_mapping`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot be read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_TextLoader)  # a SafeLoader: no Python objects
    except MappingError as exc:
        raise MappingError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    return parse_mapping(data, path, default_time_zone)


# ---------------------------------------------------------------------------------------------------
# SQL of a mapped table


def _resolve(
    mapping: SourceMapping,
    where: str,
    names: Sequence[str],
    source_columns: Mapping[str, str],
    file: Path | None = None,
) -> str:
    """The file's column for the first of `names` (or their alternatives) present in it."""
    candidates: list[str] = []
    for n in names:
        for c in (n, *mapping.alternatives.get(n, ())):
            if c not in candidates:
                candidates.append(c)
    for c in candidates:
        if c in source_columns:
            return c
    for c in candidates:
        matches = [s for s in source_columns if s.strip().lower() == c.strip().lower()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise MappingError(
                f"{mapping.path}: {where}: source column {c!r} is ambiguous in {file or 'the file'} ({matches})"
            )
    wanted = " or ".join(repr(c) for c in candidates)
    raise MappingError(
        f"{mapping.path}: {where}: source column {wanted} is not in {file or 'the file'} "
        f"(its columns: {', '.join(repr(s) for s in source_columns) or 'none'})"
    )


def _iso(ts: str) -> str:
    """SQL: ISO text of a TIMESTAMP, fractions of a second only when there are some."""
    return (
        f"case when epoch_us({ts}) % 1000000 = 0 then strftime({ts}, '%Y-%m-%dT%H:%M:%S') "
        f"else strftime({ts}, '%Y-%m-%dT%H:%M:%S.%f') end"
    )


def _render(column: str, type_: str) -> str:
    """SQL: a native column's value as text (see the module docstring, "Reading")."""
    x, t = quote_identifier(column), type_.upper()
    if t == "VARCHAR":
        return x
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return (
            f"case when isfinite({x}) and {x} = trunc({x}) and abs({x}) < {_MAX_EXACT_INTEGER} "
            f"then cast(cast({x} as bigint) as varchar) else cast({x} as varchar) end"
        )
    if t.startswith("DECIMAL"):  # a whole decimal reads as an integer (12346.0 -> '12346'), like a double
        return f"case when {x} = trunc({x}) then cast(cast({x} as hugeint) as varchar) else cast({x} as varchar) end"
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return _iso(f"timezone('UTC', {x})") + " || '+00:00'"
    if t in ("TIMESTAMP", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"):
        return _iso(f"cast({x} as timestamp)")
    if t == "TIMESTAMP_NS":
        return f"replace(cast({x} as varchar), ' ', 'T')"
    return f"cast({x} as varchar)"


def _is_native_number(type_: str) -> bool:
    t = type_.upper()
    return t in ("DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT",
                 "UINTEGER", "USMALLINT", "UTINYINT", "UHUGEINT") or t.startswith("DECIMAL")  # fmt: skip


@dataclass
class _Column:
    """SQL pieces of one mapped column over the row-level relation `r`."""

    out: str  # the value before `default`, per source row
    key: str | None = None  # what min/max compare (None: the text itself)
    failed: str | None = None  # a source value passed through unconverted
    raw: str | None = None  # the source value (for `check_mapping`'s examples)


@dataclass
class _Plan:
    ctes: str
    grouped: bool
    columns: dict[str, _Column]
    final: dict[str, str]  # contract column -> SQL of the output value (over `r`, aggregated when grouped)
    group_by: list[str]


def _plan(mapping: SourceMapping, table: str, source: str, source_columns: Mapping[str, str] | Sequence[str]) -> _Plan:
    tm = mapping.table(table)
    types: dict[str, str] = (
        dict(source_columns) if isinstance(source_columns, Mapping) else dict.fromkeys(source_columns, "VARCHAR")
    )
    aliases: dict[str, str] = {}  # file column -> `_v<i>` in `s`

    def value(names: Sequence[str], where: str) -> str:
        column = _resolve(mapping, f"table {table}, {where}", names, types)
        if column not in aliases:
            aliases[column] = f"_v{len(aliases)}"
        return aliases[column]

    zone = quote_literal(mapping.time_zone)

    def local(ts: str) -> str:  # a TIMESTAMP in the mapping's zone -> the same instant as a UTC TIMESTAMP
        return ts if mapping.time_zone == "UTC" else f"timezone('UTC', timezone({zone}, {ts}))"

    def iso_instant(v: str) -> str:
        return (
            f"case when regexp_matches({v}, {quote_literal(_ZONED)}) "
            f"then timezone('UTC', coalesce(try_cast({v} as timestamptz), "
            # DuckDB reads '10:00:00+02:00' but not '10:00:00 +02:00'
            f"try_cast(regexp_replace({v}, '\\s+([+-][0-9]{{2}})', '\\1') as timestamptz))) "
            f"else {local(f'try_cast({v} as timestamp)')} end"
        )

    columns: dict[str, _Column] = {}
    windows: list[str] = []
    for cm in tm.columns:
        where = f"column {cm.column}"
        if cm.value is not None:
            columns[cm.column] = _Column(quote_literal(cm.value))
            continue
        if cm.template is not None:
            parts = []
            for kind, text in cm.template:
                if kind == "text":
                    parts.append(quote_literal(text))
                elif kind == "column":
                    parts.append(value((text,), f"{where}, template {{{text}}}"))
                else:
                    partition = [value((n,), f"{where}, number_within") for n in cm.number_within]
                    number = f"_n{len(windows)}"
                    over = f"partition by {', '.join(partition)} " if partition else ""
                    windows.append(f"cast(row_number() over ({over}order by {RECORD}) as varchar) as {number}")
                    if cm.pad:
                        # lpad cuts a longer text: a number with more digits than `pad` is kept whole
                        padded = f"lpad({number}, {cm.pad}, '0')"
                        number = f"case when length({number}) >= {cm.pad} then {number} else {padded} end"
                    parts.append(number)
            columns[cm.column] = _Column(" || ".join(parts) if parts else "''")
            continue
        v = value(cm.source, f"{where}, from")
        source_type = types[_resolve(mapping, f"table {table}, {where}", cm.source, types)]
        if cm.values is not None or cm.cases is not None:
            if cm.values is not None:
                tests = [(f"{v} = {quote_literal(k)}", t) for k, t in cm.values]
            else:
                tests = [(f"regexp_matches({v}, {quote_literal(c.matches)})", c.then) for c in cm.cases or ()]
            otherwise = quote_literal(cm.otherwise) if cm.otherwise is not None else v
            whens = " ".join(f"when {test} then {quote_literal(then)}" for test, then in tests)
            out = f"case when {v} is null then null {whens} else {otherwise} end"
            failed = (
                None if cm.otherwise is not None else f"{v} is not null and not ({' or '.join(t for t, _ in tests)})"
            )
            columns[cm.column] = _Column(out, failed=failed, raw=v)
        elif cm.timestamp is not None:
            ts = iso_instant(v)
            if cm.timestamp != "auto":
                parsed = f"try_strptime({v}, {quote_literal(cm.timestamp)})"
                local_or_zoned = f"timezone('UTC', {parsed})" if cm.timestamp_zoned else local(parsed)
                ts = f"coalesce({local_or_zoned}, {ts})"
            key = f"_k_{cm.column}"
            windows.append(f"{ts} as {key}")
            columns[cm.column] = _Column(
                f"coalesce({_iso(key)}, {v})", key=key, failed=f"{v} is not null and {key} is null", raw=v
            )
        elif cm.number:
            if _is_native_number(source_type):
                number = v
            elif mapping.decimal_comma:
                number = (
                    f"case when regexp_matches({v}, '^[+-]?[0-9]+(,[0-9]+)?$') then replace({v}, ',', '.') "
                    f"when regexp_matches({v}, '^[+-]?[0-9]{{1,3}}(\\.[0-9]{{3}})+(,[0-9]+)?$') "
                    f"then replace(replace({v}, '.', ''), ',', '.') end"
                )
            else:
                number = (
                    f"case when regexp_matches({v}, '^[+-]?[0-9]+(\\.[0-9]+)?$') then {v} "
                    f"when regexp_matches({v}, '^[+-]?[0-9]{{1,3}}(,[0-9]{{3}})+(\\.[0-9]+)?$') "
                    f"then replace({v}, ',', '') end"
                )
            key = f"_k_{cm.column}"
            windows.append(f"try_cast({number} as double) as {key}")
            columns[cm.column] = _Column(
                f"coalesce({number}, {v})", key=key, failed=f"{v} is not null and {key} is null", raw=v
            )
        else:
            columns[cm.column] = _Column(v)

    keys = [value((n,), "one_row_per") for n in tm.one_row_per] if tm.one_row_per else []
    # `s`: the source values used, trimmed, empty -> null; `r`: the row-level values and keys
    s = ", ".join([RECORD] + [f"nullif(trim({quote_identifier(c)}), '') as {a}" for c, a in aliases.items()])
    # `r0`: row numbers and parsed keys; `r`: the row-level output values (reading them)
    derived = "".join(f", {w}" for w in windows)
    outputs = "".join(f", {c.out} as _o_{n}" for n, c in columns.items())
    ctes = (
        f"s as (select {s} from {quote_identifier(source)}), r0 as (select *{derived} from s), "
        f"r as (select *{outputs} from r0)"
    )
    final: dict[str, str] = {}
    for cm in tm.columns:
        c, out = columns[cm.column], f"_o_{cm.column}"
        if not keys:
            expr = out
        elif cm.value is not None:
            expr = c.out
        elif cm.agg == "first":
            expr = f"first({out} order by {RECORD})"
        elif c.key is None:
            expr = f"{cm.agg}({out})"
        else:
            # the first value that could not be converted, else the min/max (ties: the first in file order)
            pick = (
                f"arg_min({out}, struct_pack(k := {c.key}, r := {RECORD}))"
                if cm.agg == "min"
                else f"arg_max({out}, struct_pack(k := {c.key}, r := -{RECORD}))"
            )
            expr = (
                f"coalesce(first({out} order by {RECORD}) filter (where {out} is not null and {c.key} is null), "
                f"{pick} filter (where {c.key} is not null))"
            )
        final[cm.column] = f"coalesce({expr}, {quote_literal(cm.default)})" if cm.default is not None else expr
    return _Plan(ctes, bool(keys), columns, final, keys)


def mapped_select(
    mapping: SourceMapping, table: str, source: str, source_columns: Mapping[str, str] | Sequence[str]
) -> str:
    """SQL selecting the mapped rows of `table` from relation `source`.

    `source` holds the user's file, one column per file column (as text; `map_file` renders native
    values as the module docstring says) plus `_record` (BIGINT, 1-based record number in file order).
    `source_columns` are the file's column names, or name -> DuckDB type of the file's column (native
    numbers are not reread with `decimal_comma`); plain names mean VARCHAR. The result has the mapped
    contract columns (VARCHAR, contract order) and `_record` (grouped tables: the group's first
    record); order by `_record` for file order. Raises `MappingError` for a source column not in the file.
    """
    plan = _plan(mapping, table, source, source_columns)
    cols = ", ".join(f"{expr} as {quote_identifier(c)}" for c, expr in plan.final.items())
    if plan.grouped:
        return f"with {plan.ctes} select {cols}, min({RECORD}) as {RECORD} from r group by {', '.join(plan.group_by)}"
    return f"with {plan.ctes} select {cols}, {RECORD} from r"


# ---------------------------------------------------------------------------------------------------
# Reading source files


_SOURCE = "_mapping_source"
_TEMP_TABLES = ("_mapping_rows", "_mapping_lines", "_mapping_rejects", "_mapping_reject_scans")


@dataclass
class _Source:
    columns: dict[str, str]  # file column -> DuckDB type in the file
    rows: int


def file_type(mapping: SourceMapping, path: Path) -> str:
    """csv | parquet | jsonl, by extension; a file of another type than `format.type` is refused."""
    name = path.name.lower()
    found = next((t for t, exts in FORMATS.items() if name.endswith(exts)), None)
    if found is None:
        raise MappingError(f"{mapping.path}: {path}: not a .csv, .parquet, .jsonl or .ndjson file")
    if mapping.format.type and found != mapping.format.type:
        raise MappingError(
            f"{mapping.path}: {path}: a {found} file, but the mapping's format.type is {mapping.format.type}"
        )
    return found


def source_files(mapping: SourceMapping, landing_dir: Path) -> list[Path]:
    """The mapping's files under `<landing_dir>/<name>/` (any depth), sorted; temporary, hidden and
    lock names are skipped as the ingest skips them."""
    folder = Path(landing_dir) / mapping.name
    if not folder.is_dir():
        return []
    extensions = tuple(e for exts in FORMATS.values() for e in exts)
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.name.lower().endswith(extensions) and is_landing_name(p.relative_to(folder)) and p.is_file()
    )
    for p in files:
        file_type(mapping, p)
    return files


def _create_in_order(con: duckdb.DuckDBPyConnection, table: str, query: str) -> int:
    """Temp table whose rowids follow the query's (file) order: `rowid + 1` is the record number."""
    con.execute(f"create temp table {table} as {query}")
    rows, first, last = con.execute(f"select count(*), min(rowid), max(rowid) from {table}").fetchone()
    if rows and (first, last) != (0, rows - 1):  # guard: DuckDB numbers a new table's rows from 0
        raise RuntimeError(f"{table}: rowids {first}..{last} do not number {rows} rows from 0")
    return rows


def _referenced(mapping: SourceMapping, columns: Mapping[str, str], path: Path) -> list[str]:
    """The file's columns the mapping's tables use (resolved as `mapped_select` resolves them)."""
    used: list[str] = []
    for tm in mapping.tables:
        names: list[tuple[str, Sequence[str]]] = [("one_row_per", (n,)) for n in tm.one_row_per or ()]
        for cm in tm.columns:
            w = f"column {cm.column}"
            if cm.source:
                names.append((f"{w}, from", cm.source))
            for kind, text in cm.template or ():
                if kind == "column":
                    names.append((f"{w}, template {{{text}}}", (text,)))
            names += [(f"{w}, number_within", (n,)) for n in cm.number_within]
        for where, candidates in names:
            c = _resolve(mapping, f"table {tm.table}, {where}", candidates, columns, path)
            if c not in used:
                used.append(c)
    return used


def _check_names(mapping: SourceMapping, path: Path, names: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for n in names:
        if n.lower() == RECORD:
            raise MappingError(f"{mapping.path}: {path}: a column is named {n!r}, a name the mapping uses itself")
        if n.lower() in seen:
            raise MappingError(
                f"{mapping.path}: {path}: columns {seen[n.lower()]!r} and {n!r} have the same name "
                "(names are compared ignoring case)"
            )
        seen[n.lower()] = n


def _read_source(con: duckdb.DuckDBPyConnection, mapping: SourceMapping, path: Path) -> _Source:
    """Create temp view `_mapping_source` (the file's values as text + `_record`); MappingError when
    the file cannot be read whole."""
    try:
        return _read_source_unchecked(con, mapping, path)
    except duckdb.Error as exc:
        raise MappingError(f"{mapping.path}: {path}: cannot be read: {str(exc).splitlines()[0]}") from None


def _read_source_unchecked(con: duckdb.DuckDBPyConnection, mapping: SourceMapping, path: Path) -> _Source:
    kind = file_type(mapping, path)
    glob = [c for c in GLOB_CHARACTERS if c in str(path)]
    if glob:
        raise MappingError(
            f"{mapping.path}: {path}: the path contains {' '.join(glob)}, which DuckDB reads as a pattern "
            "matching other files; rename the file"
        )
    if not path.is_file():
        raise MappingError(f"{mapping.path}: {path}: no such file")
    p = quote_literal(str(path))
    if kind == "parquet":
        columns = {n: t for n, t, *_ in con.execute(f"describe select * from read_parquet({p})").fetchall()}
        _check_names(mapping, path, list(columns))
        used = _referenced(mapping, columns, path)
        select = ", ".join(f"{_render(c, columns[c])} as {quote_identifier(c)}" for c in used) or "null as _none"
        rows = _create_in_order(con, "_mapping_rows", f"select {select} from read_parquet({p})")
    elif kind == "jsonl":
        columns, rows = _read_jsonl(con, mapping, path, p)
    else:
        columns, rows = _read_csv(con, mapping, path, p)
    con.execute(f"create or replace temp view {_SOURCE} as select *, rowid + 1 as {RECORD} from _mapping_rows")
    return _Source(columns, rows)


def _read_csv(con: duckdb.DuckDBPyConnection, mapping: SourceMapping, path: Path, p: str) -> tuple[dict, int]:
    fmt = mapping.format
    try:
        with path.open(encoding=CSV_ENCODINGS[fmt.encoding], newline="") as fh:
            first = next(csv.reader(fh, delimiter=fmt.delimiter), None)
    except UnicodeDecodeError:
        raise _not_decodable(mapping, path) from None
    except csv.Error as exc:
        raise MappingError(f"{mapping.path}: {path}: line 1 cannot be read: {exc}") from None
    if not first:  # an empty file: nothing to map
        con.execute("create temp table _mapping_rows (_none varchar)")
        return {}, 0
    if fmt.header:
        names = [h if h.strip() else f"column{i}" for i, h in enumerate(first, 1)]
    else:
        names = [f"column{i}" for i in range(1, len(first) + 1)]
    _check_names(mapping, path, names)
    columns = dict.fromkeys(names, "VARCHAR")
    _referenced(mapping, columns, path)  # a missing column fails before the file is read
    struct = "{" + ", ".join(f"{quote_literal(n)}: 'VARCHAR'" for n in names) + "}"
    for t in ("_mapping_rejects", "_mapping_reject_scans"):
        con.execute(f"drop table if exists {t}")
    rows = _create_in_order(
        con,
        "_mapping_rows",
        f"""select * from read_csv({p}, columns = {struct}, header = {str(fmt.header).lower()},
                delim = {quote_literal(fmt.delimiter)}, quote = '"', escape = '"',
                encoding = {quote_literal(fmt.encoding)}, auto_detect = false, strict_mode = true,
                store_rejects = true, rejects_table = '_mapping_rejects', rejects_scan = '_mapping_reject_scans')""",
    )
    reject = con.execute(
        "select line, error_type, error_message from _mapping_rejects order by line, error_type limit 1"
    ).fetchone()
    if reject:
        line, error_type, message = reject
        raise MappingError(
            f"{mapping.path}: {path}: line {line:,} cannot be read ({error_type.lower()}: {message}); nothing mapped"
        )
    _check_csv_records(con, mapping, path, names, rows)
    return columns, rows


def _not_decodable(mapping: SourceMapping, path: Path) -> MappingError:
    """The error for a CSV file that is not in the mapping's encoding, naming the first such line."""
    encoding = mapping.format.encoding
    where = ""
    if encoding != "utf-16":  # one byte per line break: the file's lines can be decoded one by one
        with path.open("rb") as fh:
            for number, line in enumerate(fh, 1):
                try:
                    line.decode(CSV_ENCODINGS[encoding])
                except UnicodeDecodeError:
                    where = f"line {number:,} "
                    break
    return MappingError(
        f"{mapping.path}: {path}: {where or 'the file '}is not {encoding}; set format.encoding "
        f"({', '.join(CSV_ENCODINGS)})"
    )


def _check_csv_records(
    con: duckdb.DuckDBPyConnection, mapping: SourceMapping, path: Path, names: list[str], rows: int
) -> None:
    """Records must account for the file's lines: a stray quote makes DuckDB read the lines after it as
    one value without rejecting anything, and a surplus delimiter before an empty last field is dropped
    silently (the values shift). One pass over the lines, counted apart from the parser."""
    fmt = mapping.format
    fields, delimiter = len(names), fmt.delimiter
    lines = 0
    odd_quotes = surplus = None
    try:
        with path.open(encoding=CSV_ENCODINGS[fmt.encoding], newline="") as fh:
            for number, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line:
                    continue
                lines += 1
                quotes = line.count('"')
                if quotes % 2 and odd_quotes is None:
                    odd_quotes = number
                if not quotes and surplus is None and line.count(delimiter) >= fields:
                    surplus = number, line.count(delimiter) + 1
    except UnicodeDecodeError:
        raise _not_decodable(mapping, path) from None
    if surplus:
        number, found = surplus
        raise MappingError(
            f"{mapping.path}: {path}: line {number:,} has {found} fields where the header has {fields} "
            "(a surplus delimiter): its values would shift; nothing mapped"
        )
    cols = [quote_identifier(n) for n in names]
    breaks_sql = " + ".join(f"coalesce(length({c}) - length(replace({c}, chr(10), '')), 0)" for c in cols)
    (breaks,) = con.execute(f"select coalesce(sum({breaks_sql}), 0) from _mapping_rows").fetchone()
    expected = rows + breaks + (1 if fmt.header else 0)
    advice = 'a quote inside a value must be doubled ("") or the value quoted whole; nothing mapped'
    if expected != lines:
        suspect = f"; line {odd_quotes:,} is the first with an odd number of quotes" if odd_quotes else ""
        raise MappingError(
            f"{mapping.path}: {path}: {lines:,} non-empty lines but {rows:,} records "
            f"({breaks:,} line breaks inside quoted values){suspect}: {advice}"
        )
    if breaks and fields > 1 and odd_quotes:
        # two stray quotes make one value of the lines between them, the record count still adding up
        swallowed = " or ".join(
            f"coalesce(list_max(list_transform(string_split({c}, chr(10))[2:], lambda l: "
            f"length(l) - length(replace(l, {quote_literal(delimiter)}, '')))) >= {fields - 1}, false)"
            for c in cols
        )
        hit = con.execute(f"select rowid + 1 from _mapping_rows where {swallowed} order by rowid limit 1").fetchone()
        if hit:
            raise MappingError(
                f"{mapping.path}: {path}: record {hit[0]:,} has a quoted value running over lines that look like "
                f"records of their own (line {odd_quotes:,} is the first with an odd number of quotes): {advice}"
            )


def _read_jsonl(con: duckdb.DuckDBPyConnection, mapping: SourceMapping, path: Path, p: str) -> tuple[dict, int]:
    for t in ("_mapping_rejects", "_mapping_reject_scans"):
        con.execute(f"drop table if exists {t}")
    _create_in_order(
        con,
        "_mapping_lines",
        f"""select line from read_csv({p}, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\x01',
                quote = '', escape = '', auto_detect = false, strict_mode = false, store_rejects = true,
                rejects_table = '_mapping_rejects', rejects_scan = '_mapping_reject_scans')""",
    )
    reject = con.execute("select line, error_message from _mapping_rejects order by line limit 1").fetchone()
    if reject:
        raise MappingError(f"{mapping.path}: {path}: line {reject[0]:,} cannot be read ({reject[1]}); nothing mapped")
    # non-blank lines, numbered as records; the lines' own numbers for messages
    con.execute(
        """create or replace temp view _mapping_records as
           select line, rowid + 1 as line_number from _mapping_lines
           where trim(coalesce(line, ''), ' ' || chr(9) || chr(13)) <> ''"""
    )
    bad = con.execute(
        """select line_number from _mapping_records
           where not coalesce(json_valid(line) and json_type(line) = 'OBJECT', false) order by line_number limit 1"""
    ).fetchone()
    if bad:
        raise MappingError(f"{mapping.path}: {path}: line {bad[0]:,} is not a JSON object; nothing mapped")
    keys = [
        k
        for (k,) in con.execute(
            "select distinct unnest(json_keys(line)) as k from _mapping_records order by k"
        ).fetchall()
    ]
    _check_names(mapping, path, keys)
    columns = dict.fromkeys(keys, "VARCHAR")
    used = _referenced(mapping, columns, path)
    pointers = [quote_literal("/" + k.replace("~", "~0").replace("/", "~1")) for k in used]
    if used:
        # a key holding only JSON numbers is a native number (decimal_comma does not reread it)
        numeric = con.execute(
            "select "
            + ", ".join(
                f"coalesce(bool_and(t[{i}] in ('BIGINT', 'UBIGINT', 'DOUBLE')) filter (where t[{i}] <> 'NULL'), false)"
                for i in range(1, len(used) + 1)
            )
            + f" from (select json_type(line, [{', '.join(pointers)}]) as t from _mapping_records)"
        ).fetchone()
        for c, is_number in zip(used, numeric, strict=True):
            columns[c] = "DOUBLE" if is_number else "VARCHAR"
    select = ", ".join(f"_v[{i}] as {quote_identifier(c)}" for i, c in enumerate(used, 1)) if used else "null as _none"
    rows = _create_in_order(
        con,
        "_mapping_rows",
        f"""select {select} from (
                select {f"json_extract_string(line, [{', '.join(pointers)}])" if used else "null"} as _v
                from _mapping_records order by line_number)""",
    )
    return columns, rows


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"drop view if exists {_SOURCE}")
    con.execute("drop view if exists _mapping_records")
    for t in _TEMP_TABLES:
        con.execute(f"drop table if exists {t}")


class _InFileOrder:
    """Within the block: `preserve_insertion_order` on (rowids in file order, output in `_record` order)
    and no temp tables left behind; the connection's setting restored afterwards."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def __enter__(self) -> None:
        (self.preserve,) = self.con.execute("select current_setting('preserve_insertion_order')").fetchone()
        self.con.execute("set preserve_insertion_order = true")
        _drop_temp(self.con)

    def __exit__(self, *exc: object) -> None:
        _drop_temp(self.con)
        self.con.execute(f"set preserve_insertion_order = {'true' if self.preserve else 'false'}")


# ---------------------------------------------------------------------------------------------------
# Writing


def output_name(mapping: SourceMapping, path: Path, relative: Path | None = None) -> str:
    """`<mapping name>__<file stem>` (with `relative`, the path below `<landing>/<name>/` joined by `__`),
    characters other than letters, digits, `.`, `-` and `_` replaced by `_` (the ingest refuses glob
    characters in a landing path)."""
    parts = (*relative.parent.parts, Path(relative.name).stem) if relative is not None else (path.stem,)
    return re.sub(r"[^A-Za-z0-9._-]", "_", "__".join((mapping.name, *parts)))


def map_file(
    con: duckdb.DuckDBPyConnection,
    mapping: SourceMapping,
    path: Path,
    out_dir: Path,
    *,
    name: str | None = None,
    overwrite: bool = False,
) -> dict[str, MappedFile]:
    """Map one source file: write `out_dir/<schema>/<table>/<name>.parquet` for every table of the
    mapping (`name` defaults to `output_name(mapping, path)`), every column VARCHAR, rows by `_record`.

    All tables are written under temporary names first and renamed only when every one succeeded. The
    same file mapped twice gives byte-identical files; an existing identical file is left untouched.
    An existing file with other content is refused unless `overwrite` (the ingest may have loaded it,
    and a delivered file must not change: it fails a loaded path whose content changed).
    Raises `MappingError` when the file cannot be read completely or lacks a column the mapping uses.
    """
    path, out_dir = Path(path), Path(out_dir)
    name = name or output_name(mapping, path)
    pending: list[tuple[Path, Path]] = []
    results: dict[str, MappedFile] = {}
    try:
        with _InFileOrder(con):
            source = _read_source(con, mapping, path)
            for tm in mapping.tables:
                target = out_dir / tm.schema / tm.name / f"{name}.parquet"
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.tmp")
                names = [quote_identifier(cm.column) for cm in tm.columns]
                cols = ", ".join(names)
                if source.columns:
                    sql = mapped_select(mapping, tm.table, _SOURCE, source.columns)
                else:  # an empty file: no columns, no rows
                    nulls = ", ".join(f"cast(null as varchar) as {c}" for c in names)
                    sql = f"select {nulls}, 0 as {RECORD} where false"
                (written,) = con.execute(
                    f"copy (select {cols} from ({sql}) order by {RECORD}) to {quote_literal(str(tmp))} "
                    "(format parquet, compression zstd)"
                ).fetchone()
                pending.append((tmp, target))
                results[tm.table] = MappedFile(target, written, source.rows)
    except BaseException:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        raise
    unchanged = {target for tmp, target in pending if target.exists() and sha256_file(target) == sha256_file(tmp)}
    changed = [target for _, target in pending if target.exists() and target not in unchanged]
    if changed and not overwrite:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        raise MappingError(
            f"{mapping.path}: {path}: {changed[0]} exists with other content (the mapping or the file changed); "
            "a landing file the ingest may have loaded must not change: remove it, map under another name, "
            "or overwrite"
        )
    for tmp, target in pending:
        if target in unchanged:
            tmp.unlink()  # keep the delivered file and its stat (the ingest's stat cache skips it)
        else:
            os.replace(tmp, target)
    return results


def map_landing(
    con: duckdb.DuckDBPyConnection, mapping: SourceMapping, landing_dir: Path, out_dir: Path, *, overwrite: bool = False
) -> dict[Path, dict[str, MappedFile]]:
    """Map every file of `source_files(mapping, landing_dir)`, each named after its path below
    `<landing_dir>/<name>/` (`output_name`); two files that would get the same name are refused."""
    files = source_files(mapping, landing_dir)
    folder = Path(landing_dir) / mapping.name
    names: dict[str, Path] = {}
    for f in files:
        n = output_name(mapping, f, f.relative_to(folder))
        if n in names:
            raise MappingError(f"{mapping.path}: {names[n]} and {f} would both be written as {n}.parquet; rename one")
        names[n] = f
    return {f: map_file(con, mapping, f, out_dir, name=n, overwrite=overwrite) for n, f in names.items()}


# ---------------------------------------------------------------------------------------------------
# Checking


def check_mapping(con: duckdb.DuckDBPyConnection, mapping: SourceMapping, paths: Iterable[Path]) -> list[MappingCheck]:
    """Per file and table: source rows, mapped rows, values the mapping could not convert (they would
    pass through for the ingest to reject: timestamps not matching, values missing from a value map or
    matching no case, text that is not a number), with the first such value, and mapped rows where a
    required column is null. Writes nothing; raises `MappingError` as `map_file` would."""
    checks: list[MappingCheck] = []
    for path in paths:
        path = Path(path)
        with _InFileOrder(con):
            source = _read_source(con, mapping, path)
            for tm in mapping.tables:
                if not source.columns:
                    checks.append(MappingCheck(path, tm.table, 0, 0, {}, {}, {}))
                    continue
                plan = _plan(mapping, tm.table, _SOURCE, source.columns)
                failing = {c: col for c, col in plan.columns.items() if col.failed}
                stats = "".join(
                    f", count(*) filter (where {c.failed}), first({c.raw} order by {RECORD}) filter (where {c.failed})"
                    for c in failing.values()
                )
                row = con.execute(f"with {plan.ctes} select count(*){stats} from r").fetchone()
                contract = CONTRACTS_BY_NAME[tm.table]
                required = [c.column for c in tm.columns if c.column in contract.required_columns]
                sql = mapped_select(mapping, tm.table, _SOURCE, source.columns)
                empty = con.execute(
                    "select count(*)"
                    + "".join(f", count(*) filter (where {quote_identifier(c)} is null)" for c in required)
                    + f" from ({sql})"
                ).fetchone()
                unconverted = {c: row[1 + 2 * i] for i, c in enumerate(failing)}
                examples = {c: row[2 + 2 * i] for i, c in enumerate(failing) if row[1 + 2 * i]}
                checks.append(
                    MappingCheck(
                        path,
                        tm.table,
                        source.rows,
                        empty[0],
                        {c: n for c, n in unconverted.items() if n},
                        examples,
                        {c: n for c, n in zip(required, empty[1:], strict=True) if n},
                    )
                )
    return checks


__all__ = [
    "MappingError",
    "SourceMapping",
    "TableMapping",
    "ColumnMapping",
    "FileFormat",
    "MappedFile",
    "MappingCheck",
    "load_mapping",
    "parse_mapping",
    "mapped_select",
    "map_file",
    "map_landing",
    "source_files",
    "output_name",
    "check_mapping",
    "quote_identifier",
    "quote_literal",
]
