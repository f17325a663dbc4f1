"""The Online Retail II importer on two tiny files shaped like the real ones (same columns and quirks)."""

import csv

import duckdb
import pytest

from warehouse.importers.online_retail import FIRST, SECOND, import_online_retail


def write_sample(tmp_path):
    """Two tiny parquet files shaped like the real ones: overlap, a cancellation, a guest checkout, bad debt."""
    con = duckdb.connect()
    con.execute(
        f"""copy (select * from (values
                ('1001', 'A1', 'LAMP', 2, '2009-12-01 09:00:00', 3.5, 12346.0, 'United Kingdom'),
                ('1001', 'A2', 'MUG', 1, '2009-12-01 09:00:00', 1.25, 12346.0, 'United Kingdom'),
                ('C1002', 'A1', 'LAMP', -1, '2010-01-05 10:00:00', 3.5, 12346.0, 'United Kingdom'),
                ('1003', 'B9', 'CARD', 5, '2010-12-09 12:00:00', 0.5, null, 'France')
            ) as t("Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"))
            to '{tmp_path / FIRST}' (format parquet)"""
    )
    con.execute(
        f"""copy (select * from (values
                ('1003', 'B9', 'CARD', 5, timestamp '2010-12-09 12:00:00', 0.5, null, 'France'),
                ('2001', 'A2', 'MUG', 3, timestamp '2011-03-01 08:00:00', 1.25, 12347.0, 'Iceland'),
                ('2002', 'B', 'Adjust bad debt', 1, timestamp '2011-04-01 08:00:00', -100.0, null, 'United Kingdom')
            ) as t("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
                   "Country"))
            to '{tmp_path / SECOND}' (format parquet)"""
    )
    return tmp_path


@pytest.fixture
def source(tmp_path):
    return write_sample(tmp_path)


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_import_writes_the_landing_layout_and_keeps_the_dirt_for_the_quarantine(source, tmp_path):
    out = tmp_path / "landing"
    summary = import_online_retail(source, out)
    lines = read(out / "erp" / "order_lines" / "part-0000.csv")
    assert summary.rows["erp.order_lines"] == len(lines) == 6  # the overlapping line is taken once
    orders = {o["order_id"]: o for o in read(out / "erp" / "orders" / "part-0000.csv")}
    assert orders["C1002"]["status"] == "cancelled" and orders["1001"]["status"] == "completed"
    assert orders["1003"]["erp_account_id"] == ""  # a guest checkout: the ingest quarantines it
    assert {r["quantity"] for r in lines if r["order_id"] == "C1002"} == {"-1"}  # negative_quantity later
    assert {r["unit_price"] for r in lines if r["order_id"] == "2002"} == {"-100.00"}  # negative_amount later
    accounts = {a["erp_account_id"]: a for a in read(out / "erp" / "accounts" / "part-0000.csv")}
    assert set(accounts) == {"OR12346", "OR12347"} and accounts["OR12347"]["country"] == "Iceland"
    rates = read(out / "erp" / "fx_rates" / "part-0000.csv")
    gbp_2010 = {r["rate_to_base"] for r in rates if r["currency"] == "GBP" and r["rate_date"].startswith("2010")}
    assert gbp_2010 == {"1.165719"}  # 1 / 0.85784 (ECB 2010 average)


def test_missing_files_say_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="Online Retail II parquet"):
        import_online_retail(tmp_path, tmp_path / "out")


def test_a_folder_that_already_holds_deliveries_is_never_replaced(source, tmp_path):
    out = tmp_path / "landing"
    delivery = out / "erp" / "orders" / "delivered.csv"
    delivery.parent.mkdir(parents=True)
    delivery.write_text("order_id\nO1\n")
    with pytest.raises(FileExistsError, match="already holds files"):
        import_online_retail(source, out)
    assert delivery.read_text() == "order_id\nO1\n"
    assert not (out / "erp" / "order_lines").exists()
