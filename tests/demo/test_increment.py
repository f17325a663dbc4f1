"""The demo's next period: new orders for existing accounts, inside the period, never in the future."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from demo.generator import generate
from demo.increment import generate_increment


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    generate(out, customers=400, seed=3, as_of=date(2026, 9, 30))
    return out


def test_next_period_orders_belong_to_known_accounts_and_stay_in_the_period(demo):
    first = generate_increment(demo, days=14, seed=1)
    second = generate_increment(demo, days=7, seed=1)
    assert (first.period_start, first.period_end) == (date(2026, 9, 30), date(2026, 10, 14))
    assert second.period_start == first.period_end
    records = pd.read_parquet(demo / "truth/source_records.parquet")
    accounts = set(records.loc[records["source_table"] == "erp.accounts", "source_record_id"])
    for inc in (first, second):
        orders = pd.read_csv(inc.files[0], dtype=str)
        lines = pd.read_csv(inc.files[1], dtype=str)
        assert len(orders) == inc.orders > 0 and len(lines) == inc.order_lines
        assert set(orders["erp_account_id"]) <= accounts
        assert set(lines["order_id"]) <= set(orders["order_id"]) and orders["order_id"].is_unique
        days = pd.to_datetime(orders["ordered_at"]).dt.date
        assert days.min() > inc.period_start and days.max() <= inc.period_end
    assert len(json.loads((demo / "truth/manifest.json").read_text())["increments"]) == 2


def test_a_period_ending_in_the_future_is_refused(demo):
    with pytest.raises(ValueError, match="future"):
        generate_increment(demo, days=10_000)
