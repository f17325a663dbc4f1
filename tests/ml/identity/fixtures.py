"""Hand-made candidate records for identity tests (the shape of intermediate.int_identity_candidates)."""

from __future__ import annotations

import duckdb
import pandas as pd

COLUMNS = {
    "record_id": "varchar",
    "source_system": "varchar",
    "source_record_id": "varchar",
    "first_name_key": "varchar",
    "given_name_key": "varchar",
    "last_name_key": "varchar",
    "email_key": "varchar",
    "phone_nsn": "varchar",
    "phone_e164": "varchar",
    "postal_code_key": "varchar",
    "street_key": "varchar",
    "city_key": "varchar",
    "country": "varchar",
    "birth_date": "date",
    "gender_key": "varchar",
    "birth_place_key": "varchar",
    "occupation_key": "varchar",
    "company_key": "varchar",
    "ref_erp_account_id": "varchar",
    "ref_crm_customer_id": "varchar",
    "record_updated_at": "timestamp",
    "record_created_at": "timestamp",
    "blocked_values": "varchar[]",
}


def candidate(record_id: str, **fields) -> dict:
    system, source_id = record_id.split(":", 1)
    row = dict.fromkeys(COLUMNS)
    row.update(record_id=record_id, source_system=system, source_record_id=source_id, blocked_values=[])
    if "first_name_key" in fields and "given_name_key" not in fields:
        fields["given_name_key"] = fields["first_name_key"]
    row.update(fields)
    return row


def create_candidates(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    """Create `table` with the candidate schema and the given rows."""
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    con.register("_rows", df)
    casts = ", ".join(f"cast({c} as {t}) as {c}" for c, t in COLUMNS.items())
    con.execute(f"create or replace table {table} as select {casts} from _rows")
    con.unregister("_rows")
