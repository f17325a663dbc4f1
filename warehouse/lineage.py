"""Where one customer's published segments come from, in the warehouse: the segment rows, the source records
identity resolved into the customer, and for each record the landing file, the row in it and the ledger row
of that file. `segments explain CUSTOMER` prints it with the model versions (MLflow) and the dbt models.

Only keys, file names and counts are read: no name, e-mail, phone or address leaves the raw layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

# source system of an identity record -> the raw table its records are rows of, and the key column
RECORD_SOURCES = {
    "crm": ("crm.customers", "crm_customer_id"),
    "erp": ("erp.accounts", "erp_account_id"),
    "support": ("support.tickets", "ticket_id"),
    "events": ("events.events", "anonymous_id"),
}
# rows listed per record at most (an anonymous visitor id can have thousands of events)
MAX_ROWS_PER_RECORD = 5


@dataclass(frozen=True)
class SegmentRow:
    family: str
    segment_key: str
    segment_name: str
    model_name: str | None
    model_version: str | None
    definition_version: str | None
    reason: str | None
    is_fallback: bool
    assigned_at: str
    dagster_run_id: str | None


@dataclass(frozen=True)
class RawRow:
    source_file: str
    source_row: int
    file_sha256: str
    loaded_at: str
    run_id: str | None  # the run whose ingest loaded the file (its ledger row)
    ledger_status: str | None


@dataclass(frozen=True)
class SourceRecord:
    record_id: str
    matched_on: str | None
    match_probability: float | None
    raw_table: str
    rows: list[RawRow]
    more_rows: int  # rows of the record beyond MAX_ROWS_PER_RECORD


@dataclass(frozen=True)
class CustomerLineage:
    customer_id: str
    asked_for: str  # the id given, when it was retired by a merge into `customer_id`
    segments: list[SegmentRow]
    records: list[SourceRecord]


class UnknownCustomer(LookupError):
    """No customer, current or retired, has the id."""


def current_customer_id(con: duckdb.DuckDBPyConnection, customer_id: str) -> str:
    """`customer_id`, or the id it was merged into (identity's redirects, followed to the end)."""
    seen = {customer_id}
    current = customer_id
    while True:
        row = con.execute(
            "select customer_id from identity.customer_id_redirects where retired_customer_id = ?", [current]
        ).fetchone()
        if row is None or row[0] in seen:
            return current
        current = row[0]
        seen.add(current)


def customer_lineage(con: duckdb.DuckDBPyConnection, customer_id: str) -> CustomerLineage:
    """The segment rows and source records of `customer_id` (a retired id is followed to its customer)."""
    current = current_customer_id(con, customer_id)
    segments = [
        SegmentRow(*row[:8], str(row[8]), row[9])
        for row in con.execute(
            """select segment_family, segment_key, segment_name, model_name, model_version, definition_version,
                      reason, is_fallback, assigned_at, dagster_run_id
               from segments.customer_segments where customer_id = ? order by segment_family""",
            [current],
        ).fetchall()
    ]
    records = con.execute(
        """select record_id, source_system, source_record_id, matched_on, match_probability
           from identity.customer_source_records where customer_id = ? order by record_id""",
        [current],
    ).fetchall()
    if not segments and not records:
        raise UnknownCustomer(f"no customer {customer_id!r} in the warehouse (nor a customer it was merged into)")
    return CustomerLineage(
        current,
        customer_id,
        segments,
        [_source_record(con, *record) for record in records if record[1] in RECORD_SOURCES],
    )


def _source_record(con, record_id, system, key, matched_on, probability) -> SourceRecord:
    table, key_column = RECORD_SOURCES[system]  # the project's own names, never user input
    rows = con.execute(
        f"""select r._source_file, r._source_row, r._file_sha256, r._loaded_at::varchar, l.run_id, l.status,
                   count(*) over () as total
            from {table} as r
            left join audit.ingest_ledger as l
              on l.source_table = ? and l.source_file = r._source_file and l.file_sha256 = r._file_sha256
             and l.status = 'loaded'
            where r.{key_column} = ?
            order by r._loaded_at, r._source_file, r._source_row
            limit {MAX_ROWS_PER_RECORD}""",
        [table, key],
    ).fetchall()
    total = rows[0][-1] if rows else 0
    return SourceRecord(
        record_id,
        matched_on,
        probability,
        table,
        [RawRow(*row[:-1]) for row in rows],
        max(0, total - len(rows)),
    )
