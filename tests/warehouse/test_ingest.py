"""The landing loader: contract rules, quarantine reasons, origins, idempotency, reconciliation."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from warehouse.contracts import contracts_for
from warehouse.ingest import ingest_landing
from warehouse.reconcile import ledger_discrepancies

CUSTOMERS_HEADER = (
    "crm_customer_id,first_name,last_name,email,phone,street,city,postal_code,country,birth_date,created_at,updated_at"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def quarantine(con) -> dict[int, tuple[str, str, str]]:
    rows = con.execute("select source_row, reason_kind, reason, raw_record from audit.quarantine").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_empty_landing_creates_every_raw_table_empty(con, tmp_path):
    report = ingest_landing(con, tmp_path / "landing", settle_seconds=0)
    assert report.files == []
    tables = {
        t for (t,) in con.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall()
    }
    for name in (
        "crm.customers",
        "erp.orders",
        "erp.order_lines",
        "support.tickets",
        "events.events",
        "audit.quarantine",
    ):
        assert name in tables
    assert con.execute("select count(*) from crm.customers").fetchone()[0] == 0


def test_bad_rows_are_quarantined_with_reason_origin_and_content(con, tmp_path):
    landing = tmp_path / "landing"
    write(
        landing / "crm/customers/part-0.csv",
        CUSTOMERS_HEADER + ",loyalty_tier\n"
        "C1,Anna,Müller,anna@x.de,,,,,DE,1985-04-12,2021-06-01T09:15:00,,gold\n"  # 1 good
        '"C2","Bob","Smith, Jr",,,,,,,,2021-06-01T09:15:00,,\n'  # 2 good, quoted comma
        "C3,x,y,z,1,2,3,4,5,6,7,8,9,10\n"  # 3 too many fields
        "C4,Carl,Doe,,,,,,,,yesterday,,\n"  # 4 type error
        "C1,Dup,Dup,,,,,,,,2021-06-01T09:15:00,,\n"  # 5 duplicate key
        "C5,Eve,Fut,,,,,,,,2999-01-01T00:00:00,,\n"  # 6 future
        'C6,"Multi\nline",Ok,,,,,,,,2022-01-01T00:00:00,,\n'  # 7 good, embedded newline
        ",,,,,,,,,,2022-01-01T00:00:00,,\n",  # 8 missing id
    )
    report = ingest_landing(con, landing, run_id="r1", settle_seconds=0)
    (result,) = report.files
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (8, 3, 5)
    assert result.extra_columns == ["loyalty_tier"]
    loaded = con.execute("select crm_customer_id, _source_row from crm.customers order by 2").fetchall()
    assert loaded == [("C1", 1), ("C2", 2), ("C6", 7)]
    q = quarantine(con)
    assert {row: kind for row, (kind, _, _) in q.items()} == {
        3: "parse_error",
        4: "type_error",
        5: "duplicate_key",
        6: "future_date",
        8: "missing_required",
    }
    assert "created_at=yesterday" in q[4][1]
    assert json.loads(q[4][2])["first_name"] == "Carl"
    assert q[3][2].startswith("C3,x,y,z")
    assert ledger_discrepancies(con) == []


def test_same_file_twice_loads_once(con, tmp_path):
    landing = tmp_path / "landing"
    body = CUSTOMERS_HEADER + "\nC1,A,B,,,,,,,,2021-06-01T09:15:00,\n"
    write(landing / "crm/customers/a.csv", body)
    ingest_landing(con, landing, settle_seconds=0)
    write(landing / "crm/customers/copy-of-a.csv", body)  # same bytes, other name
    report = ingest_landing(con, landing, settle_seconds=0)
    assert {f.status for f in report.files} == {"skipped"}
    assert con.execute("select count(*) from crm.customers").fetchone()[0] == 1
    assert con.execute("select count(*) from audit.quarantine").fetchone()[0] == 0


def test_missing_required_column_fails_the_file_naming_file_and_column(con, tmp_path):
    landing = tmp_path / "landing"
    write(landing / "erp/orders/o.csv", "order_id,erp_account_id\nO1,A1\n")
    (result,) = ingest_landing(con, landing, settle_seconds=0).files
    assert result.status == "failed"
    assert "erp/orders/o.csv" in result.message and "ordered_at" in result.message
    status = con.execute("select status from audit.ingest_ledger").fetchall()
    assert status == [("failed",)]


def test_references_and_currency_rules(con, tmp_path):
    landing = tmp_path / "landing"
    write(landing / "erp/fx_rates/fx.csv", "rate_date,currency,rate_to_base\n2024-01-01,EUR,1\n2024-01-01,GBP,1.15\n")
    write(landing / "erp/accounts/a.csv", "erp_account_id,created_at\nA1,2023-01-01T00:00:00\n")
    write(
        landing / "erp/orders/o.csv",
        "order_id,erp_account_id,ordered_at,channel,currency,status\n"
        "O1,A1,2024-01-02T10:00:00,web,GBP,completed\n"
        "O2,A9,2024-01-02T10:00:00,web,EUR,completed\n"
        "O3,A1,2024-01-02T10:00:00,fax,XYZ,completed\n",
    )
    write(
        landing / "erp/order_lines/l.csv",
        "order_line_id,order_id,product_id,category,quantity,unit_price,discount_amount\n"
        "L1,O1,P1,home,2,9.99,\nL2,O1,P1,home,-1,9.99,0\nL3,O2,P1,home,1,9.99,0\n",
    )
    ingest_landing(con, landing, settle_seconds=0)
    kinds = con.execute("select source_table, source_row, reason from audit.quarantine order by 1, 2").fetchall()
    assert [(t, r) for t, r, _ in kinds] == [
        ("erp.order_lines", 2),
        ("erp.order_lines", 3),
        ("erp.orders", 2),
        ("erp.orders", 3),
    ]
    assert "negative_quantity" in kinds[0][2]
    assert "orphan_reference" in kinds[1][2]  # its order O2 was itself rejected
    assert "invalid_value" in kinds[3][2] and "unknown_currency" in kinds[3][2]
    assert con.execute("select discount_amount from erp.order_lines").fetchall()[0][0] is None
    assert ledger_discrepancies(con) == []


def test_jsonl_events_keep_broken_lines(con, tmp_path):
    landing = tmp_path / "landing"
    write(
        landing / "events/events/e.jsonl",
        '{"event_id":"E1","occurred_at":"2024-01-01T00:00:00","anonymous_id":"a","event_type":"login","extra":1}\n'
        "not json\n\n"
        '{"event_id":"E2","occurred_at":"2024-01-01","anonymous_id":"a","event_type":"fax"}\n',
    )
    (result,) = ingest_landing(con, landing, settle_seconds=0).files
    assert (result.rows_loaded, result.rows_quarantined) == (1, 2)
    assert result.extra_columns == ["extra"]
    assert {r: k for r, (k, _, _) in quarantine(con).items()} == {2: "parse_error", 4: "invalid_value"}


def test_record_numbers_skip_blank_lines(con, tmp_path):
    """A blank line is no record: the records after it, rejected or loaded, keep their record numbers
    (DuckDB numbers the records it rejects by line)."""
    good = "{},A,B,,,,,,,,2021-06-01T09:15:00,\n"
    bad = "{},x,y,z,1,2,3,4,5,6,7,8,9,10\n"  # too many fields: rejected by the CSV reader
    write(
        tmp_path / "landing" / "crm/customers/c.csv",
        CUSTOMERS_HEADER
        + "\n"
        + good.format("C1")
        + "\n\n"
        + bad.format("C2")
        + good.format("C3")
        + "\n"
        + "   \n"  # white space only: a record, rejected
        + good.format("C5")
        + bad.format("C6"),
    )
    (result,) = ingest_landing(con, tmp_path / "landing", settle_seconds=0).files
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (6, 3, 3)
    loaded = con.execute("select crm_customer_id, _source_row from crm.customers order by 2").fetchall()
    assert loaded == [("C1", 1), ("C3", 3), ("C5", 5)]
    assert sorted(quarantine(con)) == [2, 4, 6]


def test_jsonl_rejects_unreadable_lines_alone_and_reads_keys_in_any_case(con, tmp_path):
    """A line that is not UTF-8 or longer than the reader's maximum is rejected alone (it failed the
    whole file); `Event_ID` is `event_id`; records keep their line numbers past blank and rejected lines."""
    event = '{{"{k}":"E{i}","occurred_at":"2024-01-01T00:00:00","anonymous_id":"a","event_type":"login"}}\n'
    landing = tmp_path / "landing"
    path = landing / "events" / "events" / "e.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(
        event.format(k="event_id", i=1).encode()
        + b'{"event_id":"E2","note":"caf\xe9"}\n'  # not UTF-8
        + b"\n   \n"
        + b'{"event_id":"'
        + b"x" * 3_000_000
        + b'"}\n'  # over the reader's 2 MB line limit
        + event.format(k="Event_ID", i=6).encode()
    )
    (result,) = ingest_landing(con, landing, settle_seconds=0).files
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == ("loaded", 4, 2, 2)
    assert con.execute("select event_id, _source_row from events.events order by 2").fetchall() == [
        ("E1", 1),
        ("E6", 6),
    ]
    reasons = {r: reason for r, (_, reason, _) in quarantine(con).items()}
    assert sorted(reasons) == [2, 5]
    assert "invalid encoding" in reasons[2] and "line size over maximum" in reasons[5]
    assert ledger_discrepancies(con) == []


def test_record_numbers_count_every_rejected_record(con, tmp_path):
    landing = tmp_path / "landing"
    good = "{},A,B,,,,,,,,2021-06-01T09:15:00,\n"
    bad = "{},x,y,z,1,2,3,4,5,6,7,8,9,10\n"  # too many fields: rejected by the CSV reader
    records = [bad, bad, good, bad, good, good, bad, bad, bad, good, bad]
    write(
        landing / "crm/customers/c.csv",
        CUSTOMERS_HEADER + "\n" + "".join(r.format(f"C{i}") for i, r in enumerate(records, 1)),
    )
    (result,) = ingest_landing(con, landing, settle_seconds=0).files
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (11, 4, 7)
    loaded = con.execute("select crm_customer_id, _source_row from crm.customers order by 2").fetchall()
    assert loaded == [("C3", 3), ("C5", 5), ("C6", 6), ("C10", 10)]
    q = quarantine(con)
    assert sorted(q) == [1, 2, 4, 7, 8, 9, 11]
    assert all(raw.startswith(f"C{r},x,y,z") for r, (_, _, raw) in q.items())


def test_record_numbers_with_many_rejects_spread_and_clustered(con, tmp_path):
    landing = tmp_path / "landing"
    rnd = random.Random(7)
    bad = {i for i in range(1, 3001) if rnd.random() < 0.04} | set(range(1500, 1530)) | {1, 2, 2999, 3000}
    lines = [
        f"C{i},x,y,z,1,2,3,4,5,6,7,8,9,10" if i in bad else f"C{i},A,B,,,,,,,,2021-06-01T09:15:00,"
        for i in range(1, 3001)
    ]
    write(landing / "crm/customers/c.csv", CUSTOMERS_HEADER + "\n" + "\n".join(lines) + "\n")
    (result,) = ingest_landing(con, landing, settle_seconds=0).files
    assert (result.rows_read, result.rows_quarantined) == (3000, len(bad))
    loaded = con.execute("select crm_customer_id, _source_row from crm.customers").fetchall()
    assert len(loaded) == 3000 - len(bad)
    assert all(int(key[1:]) == row for key, row in loaded)
    assert set(quarantine(con)) == bad


def test_keys_repeated_in_a_file_are_duplicates_and_known_keys_with_new_values_updates(con, tmp_path):
    landing = tmp_path / "landing"
    write(
        landing / "crm/customers/1.csv",
        CUSTOMERS_HEADER + "\nC1,A,B,,,,,,,,2021-06-01T09:15:00,\nC2,A,B,,,,,,,,2021-06-01T09:15:00,\n",
    )
    ingest_landing(con, landing, settle_seconds=0)
    write(
        landing / "crm/customers/2.csv",
        CUSTOMERS_HEADER + "\n"
        "C3,A,B,,,,,,,,yesterday,\n"  # 1 type error: its key still counts as seen
        "C3,A,B,,,,,,,,2021-06-01T09:15:00,\n"  # 2 duplicate of row 1
        "C1,A,B,,,,,,,,2021-06-01T09:15:00,\n"  # 3 loaded before, same values: already loaded
        "C1,A,B,,,,,,,,2021-06-01T09:15:00,\n"  # 4 repeated in file: duplicate
        "C2,A,Changed,,,,,,,,2021-06-01T09:15:00,\n"  # 5 loaded before with other values: an update
        "C4,A,B,,,,,,,,2021-06-01T09:15:00,\n",  # 6 new
    )
    (second,) = [f for f in ingest_landing(con, landing, settle_seconds=0).files if f.source_file.endswith("2.csv")]
    counts = (second.rows_read, second.rows_loaded, second.rows_quarantined, second.rows_already_loaded)
    assert counts + (second.rows_updated,) == (6, 1, 3, 1, 1)
    kinds = con.execute(
        "select source_row, reason_kind, raw_record from audit.quarantine where source_file like '%2.csv'"
    ).fetchall()
    assert {r: k for r, k, _ in kinds} == {1: "type_error", 2: "duplicate_key", 4: "duplicate_key"}
    assert con.execute(
        "select crm_customer_id, last_name, _source_row from crm.customers where _source_file like '%2.csv' order by 1"
    ).fetchall() == [("C2", "Changed", 5), ("C4", "B", 6)]
    # the replaced version is kept, with where it came from and what replaced it
    versions = con.execute(
        "select record_key, record, source_file, source_row, change, replaced_by_file from audit.record_versions"
    ).fetchall()
    ((key, record, source_file, source_row, change, replaced_by),) = versions
    assert json.loads(key) == {"crm_customer_id": "C2"} and json.loads(record)["last_name"] == "B"
    assert (source_file, source_row, change, replaced_by) == (
        "crm/customers/1.csv",
        2,
        "updated",
        "crm/customers/2.csv",
    )
    assert ledger_discrepancies(con) == []
    ledger = con.execute("select rows_updated from audit.ingest_ledger where source_file like '%2.csv'").fetchall()
    assert ledger == [(1,)]


def test_an_older_version_delivered_later_is_stale_not_an_update(con, tmp_path):
    landing = tmp_path / "landing"
    write(landing / "crm/customers/1.csv", CUSTOMERS_HEADER + "\nC1,A,New,,,,,,,,2021-06-01T09:15:00,2024-05-01\n")
    ingest_landing(con, landing, settle_seconds=0)
    write(landing / "crm/customers/2.csv", CUSTOMERS_HEADER + "\nC1,A,Old,,,,,,,,2021-06-01T09:15:00,2024-01-01\n")
    (second,) = [f for f in ingest_landing(con, landing, settle_seconds=0).files if f.source_file.endswith("2.csv")]
    assert (second.rows_updated, second.rows_quarantined) == (0, 1)
    assert quarantine(con)[1][0] == "stale_update"
    assert con.execute("select last_name from crm.customers").fetchall() == [("New",)]
    assert ledger_discrepancies(con) == []


def test_a_corrected_delivery_resolves_the_quarantined_row(con, tmp_path):
    landing = tmp_path / "landing"
    write(landing / "crm/customers/1.csv", CUSTOMERS_HEADER + "\nC1,A,B,,,,,,,,yesterday,\nC2,A,B,,,,,,,,yesterday,\n")
    ingest_landing(con, landing, settle_seconds=0)
    write(landing / "crm/customers/2.csv", CUSTOMERS_HEADER + "\nC1,A,B,,,,,,,,2021-06-01T09:15:00,\n")
    ingest_landing(con, landing, settle_seconds=0)
    rows = con.execute(
        "select source_row, reason_kind, resolved_by_file from audit.quarantine order by source_row"
    ).fetchall()
    assert rows == [(1, "type_error", "crm/customers/2.csv"), (2, "type_error", None)]
    assert ledger_discrepancies(con) == []
    assert ledger_discrepancies(con) == []


def test_connection_settings_are_restored(con, tmp_path):
    landing = tmp_path / "landing"
    write(landing / "crm/customers/a.csv", CUSTOMERS_HEADER + "\nC1,A,B,,,,,,,,2021-06-01T09:15:00,\n")
    ingest_landing(con, landing, settle_seconds=0)
    assert con.execute("select current_setting('preserve_insertion_order')").fetchone()[0] is True
    con.execute("set preserve_insertion_order = false")
    write(landing / "crm/customers/b.csv", CUSTOMERS_HEADER + "\nC2,A,B,,,,,,,,2021-06-01T09:15:00,\n")
    (_, b) = ingest_landing(con, landing, settle_seconds=0).files
    assert b.status == "loaded"
    assert con.execute("select current_setting('preserve_insertion_order')").fetchone()[0] is False


def test_numbers_and_timestamps_are_read_exactly_or_rejected(con, tmp_path):
    """No rounding ('1.5' is not quantity 2, '12.345' not 12.35), no NaN or infinity, offsets and zones
    honoured (kept in UTC), whatever the session's time zone."""
    con.execute("set TimeZone = 'America/New_York'")
    landing = tmp_path / "landing"
    write(
        landing / "erp/fx_rates/fx.csv",
        "rate_date,currency,rate_to_base\n2024-01-01,EUR,1\n2024-01-01,GBP,NaN\n2024-01-01,USD,inf\n"
        "2024-01-02,USD,0.9\n",
    )
    write(landing / "erp/accounts/a.csv", "erp_account_id,created_at\nA1,2023-01-01T00:00:00\n")
    write(
        landing / "erp/orders/o.csv",
        "order_id,erp_account_id,ordered_at,channel,currency,status\n"
        "O1,A1,2024-01-02T10:00:00+05:00,web,EUR,completed\n"
        "O2,A1,2024-01-02T10:00:00Z,web,EUR,completed\n"
        "O3,A1,2024-01-02T10:00:00,web,EUR,completed\n"
        "O4,A1,2024-01-02 10:00:00 Europe/Paris,web,EUR,completed\n",
    )
    write(
        landing / "erp/order_lines/l.csv",
        "order_line_id,order_id,product_id,category,quantity,unit_price,discount_amount\n"
        "L1,O1,P1,home,1.5,9.99,\n"
        "L2,O1,P1,home,2,12.345,\n"
        "L3,O1,P1,home,2.0,12.340,\n"
        "L4,O1,P1,home,1e-1,9.99,\n"
        "L5,O1,P1,home,3,9.99,0.005\n",
    )
    ingest_landing(con, landing, settle_seconds=0)
    rejected = con.execute(
        "select source_table, source_row, reason_kind, reason from audit.quarantine order by 1, 2"
    ).fetchall()
    assert [(t, r, k) for t, r, k, _ in rejected] == [
        ("erp.fx_rates", 2, "type_error"),
        ("erp.fx_rates", 3, "type_error"),
        ("erp.order_lines", 1, "type_error"),
        ("erp.order_lines", 2, "type_error"),
        ("erp.order_lines", 4, "type_error"),
        ("erp.order_lines", 5, "type_error"),
    ]
    assert "quantity=1.5 is not an integer" in rejected[2][3]
    assert "unit_price=12.345 is not a decimal with at most 2 decimals" in rejected[3][3]
    assert con.execute("select quantity, unit_price from erp.order_lines").fetchall() == [(2, Decimal("12.34"))]
    assert [str(t) for (t,) in con.execute("select ordered_at from erp.orders order by order_id").fetchall()] == [
        "2024-01-02 05:00:00",
        "2024-01-02 10:00:00",
        "2024-01-02 10:00:00",
        "2024-01-02 09:00:00",
    ]
    assert ledger_discrepancies(con) == []


def test_glob_names_and_symbolic_links_are_refused(con, tmp_path):
    """`a*.csv` would make the reader load every matching file under its name; a link may point at any
    file of the machine. Both fail with a message; a landing folder that is itself a link is the user's."""
    real = tmp_path / "real_landing"
    folder = real / "crm" / "customers"
    write(folder / "a.csv", CUSTOMERS_HEADER + "\nC1,A,B,,,,,,,,2024-01-01T00:00:00,\n")
    write(folder / "a*.csv", CUSTOMERS_HEADER + "\nC2,A,B,,,,,,,,2024-01-01T00:00:00,\n")
    write(tmp_path / "elsewhere.csv", CUSTOMERS_HEADER + "\nC3,A,B,,,,,,,,2024-01-01T00:00:00,\n")
    (folder / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    (folder / "linked_folder").symlink_to(tmp_path, target_is_directory=True)
    landing = tmp_path / "landing"
    landing.symlink_to(real, target_is_directory=True)
    results = {f.source_file: f for f in ingest_landing(con, landing, settle_seconds=0).files}
    assert {k: f.status for k, f in results.items()} == {
        "crm/customers/a.csv": "loaded",
        "crm/customers/a*.csv": "failed",
        "crm/customers/link.csv": "failed",
    }
    assert "pattern matching other files" in results["crm/customers/a*.csv"].message
    assert "is a symbolic link" in results["crm/customers/link.csv"].message
    assert con.execute("select crm_customer_id, _source_file from crm.customers").fetchall() == [
        ("C1", "crm/customers/a.csv")
    ]


def test_a_deletion_file_deletes_loaded_records_and_quarantines_what_it_cannot(con, tmp_path):
    landing = tmp_path / "landing"
    write(
        landing / "crm/customers/1.csv",
        CUSTOMERS_HEADER + "\nC1,A,B,,,,,,,,2021-06-01T09:15:00,\nC2,A,B,,,,,,,,2021-06-01T09:15:00,\n"
        "C3,A,B,,,,,,,,2021-06-01T09:15:00,\n",
    )
    write(
        landing / "crm/consents/1.csv",
        "consent_id,crm_customer_id,purpose,is_granted,recorded_at\nK1,C3,profiling,true,2024-01-01T00:00:00\n",
    )
    ingest_landing(con, landing, settle_seconds=0)
    write(
        landing / "crm/customers/deletes/2024-02-01.csv",
        "crm_customer_id,reason\nC1,erasure request\nC1,again\nC9,typo\nC3,still has consents\n,empty\n",
    )
    report = ingest_landing(con, landing, run_id="r2", settle_seconds=0)
    (deletion,) = [f for f in report.files if "deletes" in f.source_file]
    assert (deletion.rows_read, deletion.rows_deleted, deletion.rows_quarantined) == (5, 1, 4)
    assert deletion.extra_columns == ["reason"]
    assert [r for (r,) in con.execute("select crm_customer_id from crm.customers order by 1").fetchall()] == [
        "C2",
        "C3",
    ]
    kinds = {row: kind for row, (kind, _, _) in quarantine(con).items()}
    assert kinds == {2: "duplicate_key", 3: "unknown_key", 4: "still_referenced", 5: "missing_required"}
    (version,) = con.execute(
        "select record_key, change, replaced_by_file, source_file from audit.record_versions"
    ).fetchall()
    assert json.loads(version[0]) == {"crm_customer_id": "C1"}
    assert version[1:] == ("deleted", "crm/customers/deletes/2024-02-01.csv", "crm/customers/1.csv")
    assert ledger_discrepancies(con) == []  # the deleted row's file still reconciles: raw + versions
    # a deletion file is never read as a delivery of the table
    assert not [f for f in report.files if f.source_file.endswith("2024-02-01.csv") and f.rows_loaded]


def test_orders_in_the_base_currency_need_no_exchange_rate(con, tmp_path):
    landing = tmp_path / "landing"
    write(landing / "erp/accounts/a.csv", "erp_account_id,created_at\nA1,2023-01-01T00:00:00\n")
    write(
        landing / "erp/orders/o.csv",
        "order_id,erp_account_id,ordered_at,channel,currency,status\n"
        "O1,A1,2024-01-02T10:00:00,web,EUR,completed\n"
        "O2,A1,2024-01-02T10:00:00,web,GBP,completed\n",
    )
    ingest_landing(con, landing, settle_seconds=0)  # no erp/fx_rates delivered at all
    assert con.execute("select order_id from erp.orders").fetchall() == [("O1",)]
    assert [k for _, (k, _, _) in quarantine(con).items()] == ["unknown_currency"]


def test_the_base_currency_and_time_zone_are_the_projects(con, tmp_path):
    """A project in GBP and Europe/Berlin: its GBP orders need no rate (EUR ones now do), and a timestamp
    without offset is Berlin time, kept in UTC; an offset still wins."""
    landing = tmp_path / "landing"
    write(landing / "erp/accounts/a.csv", "erp_account_id,created_at\nA1,2023-07-01T12:00:00\n")
    write(
        landing / "erp/orders/o.csv",
        "order_id,erp_account_id,ordered_at,channel,currency,status\n"
        "O1,A1,2024-01-02 10:00:00,web,GBP,completed\n"
        "O2,A1,2024-01-02T10:00:00+00:00,web,EUR,completed\n"
        "O3,A1,2024-01-02T10:00:00Z,web,GBP,completed\n",
    )
    ingest_landing(con, landing, contracts=contracts_for("GBP", "Europe/Berlin"), settle_seconds=0)
    assert con.execute("select order_id, ordered_at::varchar from erp.orders order by 1").fetchall() == [
        ("O1", "2024-01-02 09:00:00"),  # CET = UTC+1
        ("O3", "2024-01-02 10:00:00"),
    ]
    assert con.execute("select created_at::varchar from erp.accounts").fetchall() == [("2023-07-01 10:00:00",)]  # CEST
    assert [(row, k) for row, (k, _, _) in quarantine(con).items()] == [(2, "unknown_currency")]
    with pytest.raises(ValueError, match="ISO 4217"):
        contracts_for("pounds")


def test_an_older_warehouse_keeps_its_rates_under_the_renamed_column(con, tmp_path):
    con.execute("create schema erp")
    con.execute("create table erp.fx_rates (rate_date date, currency varchar, rate_to_eur double)")
    con.execute("insert into erp.fx_rates values ('2024-01-01', 'GBP', 1.17)")
    ingest_landing(con, tmp_path / "landing", settle_seconds=0)
    assert con.execute("select currency, rate_to_base from erp.fx_rates").fetchall() == [("GBP", 1.17)]
    columns = {c for (c,) in con.execute("select column_name from information_schema.columns").fetchall()}
    assert "rate_to_eur" not in columns


def test_reviews_are_keyed_by_review_and_order_and_the_contract_takes_real_export_fields(con, tmp_path):
    """A review id covering two orders is two rows (the key is the pair); the same pair twice in a file
    is a duplicate; freight, tax, instalments, an open order and a payment without its time load."""
    landing = tmp_path / "landing"
    write(landing / "erp/accounts/a.csv", "erp_account_id,region,created_at\nA1,Bavaria,2023-01-01T00:00:00\n")
    write(
        landing / "erp/orders/o.csv",
        "order_id,erp_account_id,ordered_at,channel,currency,status,source_status,shipping_amount,tax_amount\n"
        "O1,A1,2024-01-02T10:00:00,web,EUR,completed,delivered,4.90,3.10\n"
        "O2,A1,2024-01-03T10:00:00,web,EUR,open,processing,,\n"
        "O3,A1,2024-01-04T10:00:00,web,EUR,completed,delivered,-1.00,\n",
    )
    write(
        landing / "erp/payments/p.csv",
        "payment_id,order_id,paid_at,amount,currency,method,instalments\n"
        "Y1,O1,,35.80,EUR,card,3\nY2,O2,2024-01-03T10:05:00,1.00,EUR,card,0\n",
    )
    write(
        landing / "feedback/reviews/r.csv",
        "review_id,order_id,score,created_at\n"
        "R1,O1,4,2024-01-05T10:00:00\n"
        "R1,O2,4,2024-01-05T10:00:00\n"
        "R1,O1,5,2024-01-06T10:00:00\n"
        "R2,O9,3,2024-01-05T10:00:00\n"
        "R3,O1,6,2024-01-05T10:00:00\n",
    )
    report = ingest_landing(con, landing, settle_seconds=0)
    assert con.execute("select order_id, status, shipping_amount from erp.orders order by 1").fetchall() == [
        ("O1", "completed", Decimal("4.90")),
        ("O2", "open", None),
    ]
    assert con.execute("select payment_id, paid_at, instalments from erp.payments").fetchall() == [("Y1", None, 3)]
    assert con.execute("select review_id, order_id from feedback.reviews order by 2").fetchall() == [
        ("R1", "O1"),
        ("R1", "O2"),
    ]
    kinds = con.execute("select source_table, source_row, reason_kind from audit.quarantine order by 1, 2").fetchall()
    assert kinds == [
        ("erp.orders", 3, "negative_amount"),
        ("erp.payments", 2, "invalid_value"),
        ("feedback.reviews", 3, "duplicate_key"),
        ("feedback.reviews", 4, "orphan_reference"),
        ("feedback.reviews", 5, "invalid_value"),
    ]
    assert not report.failures and ledger_discrepancies(con) == []
