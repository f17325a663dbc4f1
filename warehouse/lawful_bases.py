"""The lawful basis of each purpose, as the user's project configures it, recorded in the warehouse.

dbt reads `audit.lawful_bases` (a source) to give every customer a basis per purpose in
`marts.customers` (`profiling_basis`, `marketing_email_basis`, `marketing_sms_basis`): a granted
consent; else the project's basis for one of the customer's source systems when it is legitimate
interest or contract; an explicit refusal or withdrawal ('objected') always wins. The table holds the
rows in force; a change of the project replaces them and makes the next run rebuild (`record_lawful_bases`
says whether they changed).
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from warehouse.connections import transaction
from warehouse.tables import ensure_tables

LAWFUL_BASES_TABLE = "audit.lawful_bases"
BASES = ("consent", "legitimate_interest", "contract")
PURPOSES = ("profiling", "marketing_email", "marketing_sms")
SOURCE_SYSTEMS = ("crm", "erp", "support", "events")  # '*' is every source the project does not name


def record_lawful_bases(
    con: duckdb.DuckDBPyConnection, rows: Iterable[tuple[str, str, str]], project: str, run_id: str | None
) -> bool:
    """Make `audit.lawful_bases` hold `rows` (purpose, source system or '*', basis) of `project`;
    True when that changed what was recorded before (a first recording counts as a change only when
    it differs from the default: consent for every purpose)."""
    rows = sorted(set(rows))
    for purpose, source, basis in rows:
        if purpose not in PURPOSES or basis not in BASES or source not in ("*", *SOURCE_SYSTEMS):
            raise ValueError(f"not a purpose, source system and basis: {purpose!r} {source!r} {basis!r}")
    ensure_tables(con, LAWFUL_BASES_TABLE)
    before = con.execute(f"select purpose, source_system, basis from {LAWFUL_BASES_TABLE} order by all").fetchall()
    if [tuple(r) for r in before] == rows:
        return False
    default = sorted((p, "*", "consent") for p in PURPOSES)
    with transaction(con):
        con.execute(f"delete from {LAWFUL_BASES_TABLE}")
        con.executemany(
            f"insert into {LAWFUL_BASES_TABLE} values (?, ?, ?, ?, current_timestamp::timestamp, ?)",
            [[p, s, b, project, run_id] for p, s, b in rows],
        )
    return bool(before) or rows != default
