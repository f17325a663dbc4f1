"""Raw-table suites derived from the contract: real loaded rows pass; a deliberate defect blocks."""

from __future__ import annotations

import duckdb
import pytest

from expectations.report import ReportContext, write_suite_report
from expectations.suites.raw import build_raw_suite
from expectations.validate import QueryValidation, validate
from warehouse.contracts import CONTRACTS_BY_NAME
from warehouse.ingest import ingest_landing

LINES = CONTRACTS_BY_NAME["erp.order_lines"]


@pytest.fixture
def loaded_lines(tmp_path):
    landing = tmp_path / "landing"
    for table, text in {
        "erp/fx_rates": "rate_date,currency,rate_to_base\n2024-01-01,EUR,1\n",
        "erp/accounts": "erp_account_id,created_at\nA1,2023-01-01T00:00:00\n",
        "erp/orders": (
            "order_id,erp_account_id,ordered_at,channel,currency,status\nO1,A1,2024-01-02T10:00:00,web,EUR,completed\n"
        ),
        "erp/order_lines": "order_line_id,order_id,product_id,category,quantity,unit_price,discount_amount\n"
        + "".join(f"L{i},O1,P{i},home,{i},9.99,\n" for i in range(1, 30)),
    }.items():
        (landing / table).mkdir(parents=True)
        (landing / table / "f.csv").write_text(text)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ingest_landing(con, landing, settle_seconds=0)
    return con.execute("select * from erp.order_lines").df()


def test_loaded_rows_pass(loaded_lines):
    outcome = validate(loaded_lines, build_raw_suite(LINES))
    assert outcome.success and outcome.failed_error == 0 and len(outcome.results) >= 8


@pytest.mark.parametrize(
    ("column", "value", "expectation"),
    [
        ("order_line_id", "L1", "expect_column_values_to_be_unique"),
        ("quantity", -3, "expect_column_values_to_be_between"),
        ("product_id", None, "expect_column_values_to_not_be_null"),
    ],
)
def test_defect_blocks(loaded_lines, column, value, expectation):
    loaded_lines.loc[5, column] = value
    outcome = validate(loaded_lines, build_raw_suite(LINES))
    assert outcome.blocking
    assert expectation in {r.expectation for r in outcome.results if not r.success}


def test_report_lists_every_suite(loaded_lines, tmp_path):
    ok = validate(loaded_lines, build_raw_suite(LINES))
    loaded_lines["extra"] = 1  # schema drift: an unexpected column
    bad = validate(loaded_lines, build_raw_suite(LINES))
    bad.suite = "erp.order_lines_drifted"
    every = QueryValidation(len(loaded_lines), len(loaded_lines), False, ok)
    sample = QueryValidation(10 * len(loaded_lines), len(loaded_lines), True, bad)
    context = ReportContext("run-1", "2026-12-03T10:00:00", every.scope, "http://127.0.0.1:3000/runs/run-1")
    write_suite_report(tmp_path / "run", ok, len(loaded_lines), context)
    context = ReportContext("run-1", "2026-12-03T10:00:05", sample.scope, "http://127.0.0.1:3000/runs/run-1")
    index = write_suite_report(tmp_path / "run", bad, len(loaded_lines), context)
    page = index.read_text()
    assert "erp.order_lines.html" in page and "erp.order_lines_drifted.html" in page
    assert page.count("FAILED") == 1 and page.count("passed") >= 1
    assert "<a href='http://127.0.0.1:3000/runs/run-1'>run-1</a>" in page
    assert f"every row ({len(loaded_lines):,})" in page
    drifted = (tmp_path / "run" / "erp.order_lines_drifted.html").read_text()
    assert "expect_table_columns_to_match_set" in drifted
    assert f"a sample of {len(loaded_lines):,} of {10 * len(loaded_lines):,} rows (DuckDB reservoir sample" in drifted
    assert "validated 2026-12-03T10:00:05 UTC" in drifted
