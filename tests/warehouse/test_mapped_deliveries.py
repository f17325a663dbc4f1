"""Mappings applied to deliveries before the ingest: each file once, failures named, young files waiting;
and the project's lawful bases recorded in the warehouse."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from warehouse.ingest import ingest_landing
from warehouse.lawful_bases import LAWFUL_BASES_TABLE, record_lawful_bases
from warehouse.mapped_deliveries import apply_mappings, load_mappings, trial_load
from warehouse.mapping import MappingError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one_orders_export"


@pytest.fixture
def shop(tmp_path) -> tuple[Path, Path]:
    """A copy of the shop example's mappings and landing (one orders export, FX rates)."""
    shutil.copytree(EXAMPLE / "mappings", tmp_path / "mappings")
    shutil.copytree(EXAMPLE / "landing", tmp_path / "landing")
    return tmp_path / "mappings", tmp_path / "landing"


def test_each_delivery_is_mapped_once_and_loads_reconciled(shop, tmp_path):
    mappings_dir, landing = shop
    mappings = load_mappings(mappings_dir)
    out = tmp_path / "mapped"
    first = apply_mappings(mappings, landing, out, settle_seconds=0)
    assert not first.failures and len(first.mapped) == 1
    (outputs,) = first.mapped.values()
    assert {t: o.rows_written for t, o in outputs.items()} == {
        "erp.accounts": 15,
        "erp.orders": 20,
        "erp.order_lines": 20,
    }
    assert all(o.path.with_name(o.path.name + ".done").exists() for o in outputs.values())
    again = apply_mappings(mappings, landing, out, settle_seconds=0)
    assert not again.mapped and len(again.unchanged) == 1  # not read again
    con = duckdb.connect()
    ingest_landing(con, landing, settle_seconds=0)  # the FX rates
    report = ingest_landing(con, out, settle_seconds=0)
    for f in report.files:
        assert f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_already_loaded, f
    # two orders in CHF, for which no rate is delivered: quarantined with the reason
    kinds = con.execute("select reason_kind, count(*) from audit.quarantine group by all order by all").fetchall()
    assert kinds == [("orphan_reference", 2), ("unknown_currency", 2)]


def test_a_corrected_mapping_writes_new_files_and_a_changed_delivery_fails(shop, tmp_path):
    mappings_dir, landing = shop
    out = tmp_path / "mapped"
    apply_mappings(load_mappings(mappings_dir), landing, out, settle_seconds=0)
    before = sorted(p.name for p in out.rglob("*.parquet"))
    mapping = mappings_dir / "shop_orders.yaml"
    mapping.write_text(mapping.read_text().replace("channel: {value: web}", "channel: {value: app}"))
    corrected = apply_mappings(load_mappings(mappings_dir), landing, out, settle_seconds=0)
    assert not corrected.failures and len(corrected.mapped) == 1
    after = sorted(p.name for p in out.rglob("*.parquet"))
    assert len(after) == 2 * len(before) and set(before) < set(after)  # the loaded files stay as they were
    export = next((landing / "shop_orders").iterdir())
    export.write_text(export.read_text().replace("49,90", "49,95"))  # a delivered file changed in place
    changed = apply_mappings(load_mappings(mappings_dir), landing, out, settle_seconds=0)
    assert list(changed.failures) == [str(export)]
    assert "exists with other content" in changed.failures[str(export)]


def test_an_unreadable_file_fails_alone_and_a_young_file_waits(shop, tmp_path):
    mappings_dir, landing = shop
    broken = landing / "shop_orders" / "orders-2026-12.csv"
    header = "Order Number;Customer Email;Customer Name;Order Date;Total;Currency;Status\n"
    broken.write_text(header + '1;"a@b;x;1/1/2026 10:00;1;EUR;Paid\n')
    young = landing / "shop_orders" / "orders-2027-01.csv"
    young.write_text((landing / "shop_orders" / "orders-2026-11.csv").read_text())
    for path in (broken, landing / "shop_orders" / "orders-2026-11.csv"):  # declared complete
        path.with_name(path.name + ".done").touch()
    run = apply_mappings(
        load_mappings(mappings_dir), landing, tmp_path / "mapped", settle_seconds=60, max_wait_seconds=0
    )
    assert list(run.failures) == [str(broken)] and "line 2" in run.failures[str(broken)]
    assert len(run.mapped) == 1  # the good file
    assert list(run.waiting) == [str(young)] and "still being written" in run.waiting[str(young)]


def test_two_mappings_of_one_name_are_refused(shop):
    mappings_dir, _ = shop
    shutil.copyfile(mappings_dir / "shop_orders.yaml", mappings_dir / "copy.yaml")
    with pytest.raises(MappingError, match="two mappings are named 'shop_orders'"):
        load_mappings(mappings_dir)


def test_map_check_reports_per_table_without_touching_anything(shop, tmp_path):
    mappings_dir, landing = shop
    trial = trial_load(load_mappings(mappings_dir), landing, tmp_path / "work")
    assert not trial.failures
    assert {(c.table, c.mapped_rows) for c in trial.checks} == {
        ("erp.accounts", 15),
        ("erp.orders", 20),
        ("erp.order_lines", 20),
    }
    assert trial.reasons == {"erp.order_lines": [("orphan_reference", 2)], "erp.orders": [("unknown_currency", 2)]}
    assert not (tmp_path / "mapped").exists()


def test_lawful_bases_are_replaced_only_when_the_project_changes_them():
    con = duckdb.connect()
    default = [("profiling", "*", "consent"), ("marketing_email", "*", "consent"), ("marketing_sms", "*", "consent")]
    assert record_lawful_bases(con, default, "demo", "r1") is False  # the default is no change
    assert record_lawful_bases(con, default, "demo", "r2") is False
    changed = [*default[1:], ("profiling", "*", "legitimate_interest"), ("profiling", "erp", "contract")]
    assert record_lawful_bases(con, changed, "shop", "r3") is True
    assert record_lawful_bases(con, changed, "shop", "r4") is False
    rows = con.execute(
        f"select purpose, source_system, basis, run_id from {LAWFUL_BASES_TABLE} order by all"
    ).fetchall()
    assert ("profiling", "erp", "contract", "r3") in rows and len(rows) == 4
    with pytest.raises(ValueError, match="not a purpose, source system and basis"):
        record_lawful_bases(con, [("profiling", "*", "opt_out")], "shop", "r5")
    with pytest.raises(ValueError, match="not a purpose, source system and basis"):
        record_lawful_bases(con, [("profiling", "shop", "contract")], "shop", "r6")
