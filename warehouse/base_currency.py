"""The base currency the warehouse converts amounts to, recorded so that a change cannot mix rates.

`erp.fx_rates` holds rates *to* the base currency (`rate_to_base`). A project that changes its
`base_currency` while the warehouse holds rates to the old one would convert silently wrong, so the
change is refused until those rates are gone (a new SEGMENTS_HOME); without loaded rates (a business in
one currency) the change is recorded and the next build converts with it.
"""

from __future__ import annotations

import duckdb

from warehouse.connections import transaction
from warehouse.contracts import FX_RATES_TABLE
from warehouse.tables import ensure_tables

BASE_CURRENCY_TABLE = "audit.base_currency"


class BaseCurrencyChanged(ValueError):
    """The project names another base currency than the one the loaded exchange rates are relative to."""


def record_base_currency(con: duckdb.DuckDBPyConnection, currency: str, project: str, run_id: str | None) -> bool:
    """Make `audit.base_currency` hold `currency`; True when that changed it (a first recording is no
    change). Raises BaseCurrencyChanged, naming what to do, when `erp.fx_rates` holds rates recorded under
    another base currency."""
    ensure_tables(con, BASE_CURRENCY_TABLE)
    row = con.execute(f"select currency from {BASE_CURRENCY_TABLE}").fetchone()
    recorded = row[0] if row else None
    if recorded == currency:
        return False
    if recorded is not None:
        schema, table = FX_RATES_TABLE.split(".")
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
        ).fetchone()[0]
        rates = con.execute(f"select count(*) from {FX_RATES_TABLE}").fetchone()[0] if exists else 0
        if rates:
            raise BaseCurrencyChanged(
                f"the project's base currency is {currency}, but the warehouse holds {rates:,} exchange rate(s) to "
                f"{recorded} ({FX_RATES_TABLE}): set base_currency back to {recorded}, or start a new SEGMENTS_HOME "
                f"and deliver rates to {currency}"
            )
    with transaction(con):
        con.execute(f"delete from {BASE_CURRENCY_TABLE}")
        con.execute(
            f"insert into {BASE_CURRENCY_TABLE} values (?, ?, current_timestamp::timestamp, ?)",
            [currency, project, run_id],
        )
    return recorded is not None
