"""The demo's next period: new orders for existing accounts, inside the period, never in the future."""

from __future__ import annotations

import json
import shutil
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


def _fake_outbox(path, treated: dict[str, bool], accounts: dict[str, str]) -> None:
    """A warehouse file with just what the planted effect reads: the outbox (customer -> is_holdout, one action
    `winback_email` plus a `vip_sms` row per customer, always sent) and the erp accounts of the customers."""
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.execute("create schema segments; create schema identity")
        con.execute(
            "create table segments.segment_actions (action_name varchar, customer_id varchar, is_holdout boolean)"
        )
        con.execute(
            "create table identity.customer_source_records "
            "(customer_id varchar, source_system varchar, source_record_id varchar)"
        )
        for customer, holdout in treated.items():
            con.execute("insert into segments.segment_actions values ('winback_email', ?, ?)", [customer, holdout])
            con.execute("insert into segments.segment_actions values ('vip_sms', ?, false)", [customer])
        for customer, account in accounts.items():
            con.execute("insert into identity.customer_source_records values (?, 'erp', ?)", [customer, account])


def _buying_accounts(summary) -> set[str]:
    return set(pd.read_csv(summary.files[0], dtype=str)["erp_account_id"])


def test_a_planted_treatment_effect_raises_only_the_treated_and_is_recorded(tmp_path):
    """With effect 1 every treated person buys; who buys among the others is exactly who buys without an
    effect (the same draws); holdout rows and other actions are not treated; the manifest records the truth."""
    base = tmp_path / "base"
    generate(base, customers=300, seed=5, as_of=date(2026, 9, 30))
    shutil.copytree(base, tmp_path / "planted")
    records = pd.read_parquet(base / "truth/source_records.parquet")
    first_account = (
        records[records["source_table"] == "erp.accounts"].sort_values("source_record_id").groupby("person_id").first()
    )["source_record_id"].tolist()
    # customers c0.. own the persons' first accounts; every third is in the holdout
    accounts = {f"c{i}": a for i, a in enumerate(first_account)}
    holdout = {c: i % 3 == 0 for i, c in enumerate(accounts)}
    warehouse = tmp_path / "warehouse.duckdb"
    _fake_outbox(warehouse, holdout, accounts)
    plain = generate_increment(base, days=14, seed=2)
    planted = generate_increment(
        tmp_path / "planted",
        days=14,
        seed=2,
        treatment_effect=1.0,
        warehouse=warehouse,
        treated_actions=["winback_email"],
    )
    treated = {accounts[c] for c, h in holdout.items() if not h}
    assert planted.treated == len(treated) > 0
    assert _buying_accounts(planted) == _buying_accounts(plain) | treated
    period = json.loads((tmp_path / "planted/truth/manifest.json").read_text())["increments"][-1]
    assert (period["treatment_effect"], period["treated_actions"], period["treated_persons"]) == (
        1.0,
        ["winback_email"],
        len(treated),
    )
    assert "treatment_effect" not in json.loads((base / "truth/manifest.json").read_text())["increments"][-1]


def test_a_treatment_effect_needs_the_outbox_and_a_probability(tmp_path):
    generate(tmp_path, customers=50, seed=5, as_of=date(2026, 9, 30))
    with pytest.raises(ValueError, match="warehouse file"):
        generate_increment(tmp_path, days=7, treatment_effect=0.1)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        generate_increment(tmp_path, days=7, treatment_effect=1.5, warehouse=tmp_path / "w.duckdb")
    with pytest.raises(FileNotFoundError, match="no warehouse file"):
        generate_increment(tmp_path, days=7, treatment_effect=0.1, warehouse=tmp_path / "missing.duckdb")
