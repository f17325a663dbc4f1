"""The recorded base currency: a change is refused while the warehouse holds rates to the old one."""

from __future__ import annotations

import pytest

from warehouse.base_currency import BaseCurrencyChanged, record_base_currency
from warehouse.ingest import ensure_raw_tables


def test_a_first_recording_is_no_change_and_a_change_without_rates_is_recorded(con):
    assert record_base_currency(con, "EUR", "p", "r1") is False
    assert record_base_currency(con, "EUR", "p", "r2") is False
    assert record_base_currency(con, "GBP", "p", "r3") is True  # no exchange rate loaded: nothing to mix
    assert con.execute("select currency, run_id from audit.base_currency").fetchall() == [("GBP", "r3")]


def test_a_change_is_refused_while_rates_to_the_old_currency_are_loaded(con):
    ensure_raw_tables(con)
    record_base_currency(con, "EUR", "p", "r1")
    con.execute("insert into erp.fx_rates (rate_date, currency, rate_to_base) values ('2024-01-01', 'GBP', 1.17)")
    with pytest.raises(BaseCurrencyChanged, match="holds 1 exchange rate.s. to EUR .*set base_currency back to EUR"):
        record_base_currency(con, "USD", "p", "r2")
    assert con.execute("select currency from audit.base_currency").fetchall() == [("EUR",)]
