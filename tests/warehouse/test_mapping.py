"""Source mappings (`warehouse.mapping`): YAML -> contract-shaped Parquet, on real DuckDB in temp dirs.

Each rule has a test that fails when the rule is broken: a mapping reshapes text only, never drops or
rounds, passes what it cannot convert through for the ingest to reject, and never lets user text
reach SQL unquoted."""

from __future__ import annotations

import hashlib
import tempfile
import textwrap
from pathlib import Path

import duckdb
import pytest
import yaml

from warehouse.ingest import ingest_landing
from warehouse.mapping import (
    MappingError,
    SourceMapping,
    check_mapping,
    load_mapping,
    map_file,
    map_landing,
    mapped_select,
    source_files,
)

ROOT = Path(__file__).resolve().parents[2]
ONLINE_RETAIL = ROOT / "examples" / "online_retail_ii" / "mappings" / "online_retail.yaml"
SHOP = ROOT / "examples" / "one_orders_export"

# the columns every erp.orders mapping below needs (required by the contract)
ORDER_REST = """
      channel: {value: web}
      currency: {value: EUR}
      status: {value: completed}"""


def load(tmp_path: Path, text: str, name: str = "m.yaml") -> SourceMapping:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_mapping(path)


def orders_mapping(tmp_path: Path, columns: str, *, top: str = "", one_row_per: str = "") -> SourceMapping:
    """A mapping of erp.orders with the given column lines (plus the required ones not given)."""
    columns = textwrap.dedent(columns).strip("\n")
    given = {line.split(":")[0].strip() for line in columns.splitlines()}
    rest = "\n".join(line for line in ORDER_REST.strip("\n").splitlines() if line.split(":")[0].strip() not in given)
    body = textwrap.indent(columns, "      ") + "\n" + rest
    group = f"    one_row_per: {one_row_per}\n" if one_row_per else ""
    return load(tmp_path, f"name: shop\n{textwrap.dedent(top)}tables:\n  erp.orders:\n{group}    columns:\n{body}\n")


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(textwrap.dedent(text).lstrip("\n").encode(encoding))
    return path


def read(con: duckdb.DuckDBPyConnection, path: Path) -> list[dict]:
    cur = con.execute(f"select * from read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def run(con, mapping: SourceMapping, source: Path, out: Path, table: str = "erp.orders") -> list[dict]:
    return read(con, map_file(con, mapping, source, out)[table].path)


def column(rows: list[dict], name: str) -> list:
    return [r[name] for r in rows]


ORDERS_CSV = """
    Invoice,Customer ID,When,Status,Total
    A1,17,2010-01-15 10:00,P,"1,234.50"
    A2,,2010-07-01 10:00,R,12
    C3,18,not a date,X,oops
"""


# --- columns -----------------------------------------------------------------------------------------


def test_from_renames_value_is_a_constant_and_unmapped_columns_are_absent(con, tmp_path):
    m = orders_mapping(
        tmp_path, "order_id: {from: Invoice}\nerp_account_id: {from: Customer ID}\nordered_at: {from: When}"
    )
    rows = run(con, m, write_csv(tmp_path / "o.csv", ORDERS_CSV), tmp_path / "out")
    # contract order, only the mapped columns; every source row kept, as text
    assert list(rows[0]) == ["order_id", "erp_account_id", "ordered_at", "channel", "currency", "status"]
    assert column(rows, "order_id") == ["A1", "A2", "C3"]
    assert column(rows, "erp_account_id") == ["17", None, "18"]  # an empty value is null
    assert column(rows, "channel") == ["web"] * 3
    assert column(rows, "ordered_at") == ["2010-01-15 10:00", "2010-07-01 10:00", "not a date"]  # as delivered


def test_template_is_null_when_a_referenced_value_is_empty_and_default_fills_nulls(con, tmp_path):
    m = orders_mapping(
        tmp_path,
        """
        order_id: {template: "{Invoice}/{{x}}"}
        erp_account_id: {template: "OR{Customer ID}", default: guest}
        ordered_at: {from: When}
        """,
    )
    rows = run(con, m, write_csv(tmp_path / "o.csv", ORDERS_CSV), tmp_path / "out")
    assert column(rows, "order_id") == ["A1/{x}", "A2/{x}", "C3/{x}"]  # {{ }} are braces
    assert column(rows, "erp_account_id") == ["OR17", "guest", "OR18"]


def test_regex_cases_apply_in_order_with_else_or_pass_through(con, tmp_path):
    m = orders_mapping(
        tmp_path,
        """
        order_id: {from: Invoice}
        erp_account_id: {from: Invoice, when: [{matches: "^C", then: cancelled}, {matches: "[13]$", then: odd}]}
        ordered_at: {from: When}
        status: {from: Invoice, when: [{matches: "^C", then: cancelled}], else: completed}
        """,
    )
    rows = run(con, m, write_csv(tmp_path / "o.csv", ORDERS_CSV), tmp_path / "out")
    assert column(rows, "status") == ["completed", "completed", "cancelled"]
    # the first matching case wins (C3 matches both); no case and no else: passed through (A2)
    assert column(rows, "erp_account_id") == ["odd", "A2", "cancelled"]


def test_value_map_passes_unmapped_values_through_unless_else_and_null_stays_null(con, tmp_path):
    m = orders_mapping(
        tmp_path,
        """
        order_id: {from: Invoice}
        erp_account_id: {from: Customer ID, values: {"17": seventeen}, default: none}
        ordered_at: {from: When}
        status: {from: Status, values: {P: completed, R: returned}}
        channel: {from: Status, values: {P: web}, else: store}
        """,
    )
    rows = run(con, m, write_csv(tmp_path / "o.csv", ORDERS_CSV), tmp_path / "out")
    assert column(rows, "status") == ["completed", "returned", "X"]  # X: for the ingest to reject
    assert column(rows, "channel") == ["web", "store", "store"]
    assert column(rows, "erp_account_id") == ["seventeen", "none", "18"]  # null -> default, not else


def test_alternatives_and_from_lists_take_the_first_name_present(con, tmp_path):
    m = orders_mapping(
        tmp_path,
        """
        order_id: {from: InvoiceNo}
        erp_account_id: {from: [CustomerID, Customer ID]}
        ordered_at: {template: "{InvoiceDate}"}
        """,
        top="alternatives:\n  InvoiceNo: [Invoice]\n  InvoiceDate: [When]\n",
    )
    rows = run(con, m, write_csv(tmp_path / "o.csv", ORDERS_CSV), tmp_path / "out")
    assert column(rows, "order_id") == ["A1", "A2", "C3"]
    assert column(rows, "erp_account_id") == ["17", None, "18"]
    assert column(rows, "ordered_at")[0] == "2010-01-15 10:00"


def test_source_columns_match_case_insensitively_when_unambiguous(con, tmp_path):
    m = orders_mapping(
        tmp_path, "order_id: {from: invoice}\nerp_account_id: {from: customer id}\nordered_at: {from: WHEN}"
    )
    rows = run(con, m, write_csv(tmp_path / "o.csv", ORDERS_CSV), tmp_path / "out")
    assert column(rows, "order_id") == ["A1", "A2", "C3"]


# --- grouping and numbering ---------------------------------------------------------------------------

LINES_CSV = """
    Invoice,Customer ID,InvoiceDate,Country
    B,,12/01/2009 10:00,France
    A,7,01/05/2010 09:00,Iceland
    B,8,11/30/2009 08:00,Spain
    ,9,06/01/2010 10:00,Peru
    A,7,12/24/2009 12:00,Norway
    ,9,03/01/2010 10:00,Chile
"""


def test_one_row_per_takes_the_first_rows_value_unless_agg_and_null_keys_form_a_group(con, tmp_path):
    m = orders_mapping(
        tmp_path,
        """
        order_id: {from: Invoice}
        erp_account_id: {from: Customer ID}
        ordered_at: {from: InvoiceDate, timestamp: "%m/%d/%Y %H:%M", agg: min}
        channel: {from: Country}
        currency: {from: Country, agg: max}
        """,
        one_row_per="[Invoice]",
    )
    out = map_file(con, m, write_csv(tmp_path / "l.csv", LINES_CSV), tmp_path / "out")["erp.orders"]
    rows = read(con, out.path)
    assert (out.rows_written, out.rows_read) == (3, 6)
    by_id = {r["order_id"]: r for r in rows}
    assert column(rows, "order_id") == ["B", "A", None]  # groups in order of their first record
    assert by_id["B"]["erp_account_id"] is None  # the FIRST row's value, even when null
    assert by_id["B"]["channel"] == "France"
    # min compares instants, not text ('01/05/2010' < '12/24/2009' as text)
    assert by_id["A"]["ordered_at"] == "2009-12-24T12:00:00"
    assert by_id["B"]["ordered_at"] == "2009-11-30T08:00:00"
    assert by_id["A"]["currency"] == "Norway"  # max as text
    assert by_id[None]["erp_account_id"] == "9" and by_id[None]["ordered_at"] == "2010-03-01T10:00:00"


def test_agg_takes_a_value_that_could_not_be_converted_rather_than_hide_it(con, tmp_path):
    m = orders_mapping(
        tmp_path,
        "order_id: {from: Invoice}\nerp_account_id: {value: x}\n"
        'ordered_at: {from: InvoiceDate, timestamp: "%m/%d/%Y %H:%M", agg: min}',
        one_row_per="[Invoice]",
    )
    source = write_csv(tmp_path / "l.csv", "Invoice,InvoiceDate\nA,01/05/2010 09:00\nA,yesterday\nA,12/24/2009 12:00\n")
    assert column(run(con, m, source, tmp_path / "out"), "ordered_at") == ["yesterday"]


def test_number_within_numbers_rows_in_file_order_per_group_padded_never_cut(con, tmp_path):
    m = load(
        tmp_path,
        """
        name: shop
        tables:
          erp.order_lines:
            columns:
              order_line_id: {template: "{Invoice}-{#}", number_within: [Invoice], pad: 4}
              order_id: {template: "{#}", pad: 1}
              product_id: {value: p}
              category: {value: c}
              quantity: {value: "1"}
              unit_price: {value: "1"}
        """,
    )
    invoices = ["A", "B", "A", "A", "B", "A", "A", "A", "A", "A", "A", "A"]
    source = write_csv(tmp_path / "l.csv", "Invoice\n" + "\n".join(invoices) + "\n")
    rows = run(con, m, source, tmp_path / "out", "erp.order_lines")
    assert column(rows, "order_line_id")[:6] == ["A-0001", "B-0001", "A-0002", "A-0003", "B-0002", "A-0004"]
    # {#} without number_within: the position in the file; pad 1 keeps '10', '11', '12' whole
    assert column(rows, "order_id") == [str(i) for i in range(1, 13)]


def test_numbering_is_not_available_in_a_grouped_table(tmp_path):
    with pytest.raises(MappingError, match="not available in a table with one_row_per"):
        orders_mapping(
            tmp_path,
            'order_id: {template: "{Invoice}-{#}"}\nerp_account_id: {value: x}\nordered_at: {value: x}',
            one_row_per="[Invoice]",
        )


# --- timestamps ---------------------------------------------------------------------------------------


def timestamps(con, tmp_path, values: list[str], spec: str, zone: str = "Europe/London") -> list[str | None]:
    m = orders_mapping(
        tmp_path,
        f"order_id: {{from: Invoice}}\nerp_account_id: {{value: x}}\nordered_at: {{from: When, {spec}}}",
        top=f"time_zone: {zone}\n",
    )
    source = write_csv(tmp_path / "t.csv", "Invoice,When\n" + "".join(f'{i},"{v}"\n' for i, v in enumerate(values)))
    return column(run(con, m, source, Path(tempfile.mkdtemp(dir=tmp_path))), "ordered_at")


def test_local_times_convert_to_utc_in_winter_and_summer(con, tmp_path):
    values = ["2010-01-15 10:00", "2010-07-01 10:00", "2010-07-01T10:00:00"]
    expected = ["2010-01-15T10:00:00", "2010-07-01T09:00:00", "2010-07-01T09:00:00"]
    assert timestamps(con, tmp_path, values, "timestamp: auto") == expected
    assert timestamps(con, tmp_path, ["15/01/2010 10:00", "01/07/2010 10:00"], 'timestamp: "%d/%m/%Y %H:%M"') == [
        "2010-01-15T10:00:00",
        "2010-07-01T09:00:00",
    ]
    berlin = timestamps(con, tmp_path, ["2026-11-07 00:05", "2026-07-07 00:05"], "timestamp: auto", "Europe/Berlin")
    assert berlin == ["2026-11-06T23:05:00", "2026-07-06T22:05:00"]


def test_a_mapping_without_a_zone_takes_the_projects(tmp_path):
    path = orders_mapping(tmp_path, SIMPLE).path
    assert load_mapping(path).time_zone == "UTC"
    assert load_mapping(path, default_time_zone="Europe/Berlin").time_zone == "Europe/Berlin"
    path = orders_mapping(tmp_path, SIMPLE, top="time_zone: Asia/Tokyo\n").path
    assert load_mapping(path, default_time_zone="Europe/Berlin").time_zone == "Asia/Tokyo"  # its own wins


def test_clock_changes_follow_the_documented_rule(con, tmp_path):
    # 01:30 occurs twice on 2010-10-31 in London: standard time (the later instant); 01:30 on 2010-03-28
    # does not exist: read with the offset before the change
    values = ["2010-10-31 01:30", "2010-03-28 01:30"]
    assert timestamps(con, tmp_path, values, "timestamp: auto") == ["2010-10-31T01:30:00", "2010-03-28T01:30:00"]


def test_an_offset_or_zone_in_the_value_is_honoured(con, tmp_path):
    values = [
        "2010-07-01T10:00:00+05:00",
        "2010-07-01 10:00:00Z",
        "2010-07-01 10:00 +0200",
        "2010-07-01 10:00:00 Europe/Paris",
    ]
    expected = ["2010-07-01T05:00:00", "2010-07-01T10:00:00", "2010-07-01T08:00:00", "2010-07-01T08:00:00"]
    assert timestamps(con, tmp_path, values, "timestamp: auto") == expected
    # a format with %z reads the offset; an ISO value the format does not match is still read as ISO
    fmt = 'timestamp: "%d.%m.%Y %H:%M %z"'
    assert timestamps(con, tmp_path, ["01.07.2010 10:00 +0500", "2010-07-01T10:00:00+05:00"], fmt) == [
        "2010-07-01T05:00:00",
        "2010-07-01T05:00:00",
    ]


def test_an_unparsable_timestamp_passes_through_unchanged_and_fractions_are_kept(con, tmp_path):
    values = ["not a date", "31/02/2010 10:00", "2010-07-01 10:00:00.25", "2010-01-01 10:00:00.000"]
    got = timestamps(con, tmp_path, values, 'timestamp: "%d/%m/%Y %H:%M"')
    assert got == ["not a date", "31/02/2010 10:00", "2010-07-01T09:00:00.250000", "2010-01-01T10:00:00"]


# --- numbers ------------------------------------------------------------------------------------------


def prices(con, tmp_path, values: list[str], decimal_comma: bool) -> list[str | None]:
    m = load(
        tmp_path,
        f"""
        name: shop
        format: {{delimiter: ";"}}
        decimal_comma: {str(decimal_comma).lower()}
        tables:
          erp.order_lines:
            columns:
              order_line_id: {{from: Id}}
              order_id: {{from: Id}}
              product_id: {{value: p}}
              category: {{value: c}}
              quantity: {{from: Price}}
              unit_price: {{from: Price, number: true}}
        """,
    )
    source = write_csv(tmp_path / "p.csv", "Id;Price\n" + "".join(f"{i};{v}\n" for i, v in enumerate(values)))
    rows = run(con, m, source, tmp_path / "out", "erp.order_lines")
    assert column(rows, "quantity") == [v or None for v in values]  # without number: as delivered
    return column(rows, "unit_price")


def test_decimal_comma_reads_german_numbers_and_passes_others_through(con, tmp_path):
    values = ["1.234,56", "12,5", "-3", "1.234.567,00", "1,2,3", "12.50", ""]
    assert prices(con, tmp_path, values, True) == ["1234.56", "12.5", "-3", "1234567.00", "1,2,3", "12.50", None]


def test_decimal_point_drops_thousands_separators_only_in_well_formed_numbers(con, tmp_path):
    values = ["1,234.56", "12.5", "1,23", "abc"]
    assert prices(con, tmp_path, values, False) == ["1234.56", "12.5", "1,23", "abc"]


# --- native types -------------------------------------------------------------------------------------


def test_parquet_values_render_as_exact_text_never_rounded(con, tmp_path):
    source = tmp_path / "native.parquet"
    con.execute(
        f"""copy (select 'A1' as id, 2.95::double as price, 0.1::double + 0.2::double as sum,
                   13085.0::double as customer, 1e20::double as big, 2.95::float as f,
                   2.950::decimal(10,3) as d, 1.234::double as small,
                   timestamp '2010-07-01 10:00:00' as ts, timestamp '2010-07-01 10:00:00.5' as ts_frac,
                   timestamptz '2010-07-01 10:00:00+05' as tstz, date '2010-07-01' as day, true as flag,
                   42::bigint as n)
            to '{source}' (format parquet)"""
    )
    names = ["price", "sum", "customer", "big", "f", "d", "small", "ts", "ts_frac", "tstz", "day", "flag", "n"]
    # one contract column per native column: crm.customers has enough text columns
    targets = ["first_name", "last_name", "email", "phone", "street", "city", "postal_code", "country", "gender",
               "birth_place", "occupation", "company", "updated_at"]  # fmt: skip
    spec = "\n".join(f"      {t}: {{from: {n}}}" for t, n in zip(targets, names, strict=True))
    m = load(
        tmp_path,
        "name: shop\ntime_zone: Europe/London\ndecimal_comma: true\ntables:\n  crm.customers:\n    columns:\n"
        "      crm_customer_id: {from: id}\n      created_at: {from: ts, timestamp: auto}\n"
        f"      birth_date: {{from: small, number: true}}\n{spec}\n",
    )
    (row,) = run(con, m, source, tmp_path / "out", "crm.customers")
    got = {n: row[t] for t, n in zip(targets, names, strict=True)}
    assert got == {
        "price": "2.95",  # not 2.9500000000000002
        "sum": "0.30000000000000004",  # the double as it is: not rounded to 0.3 either
        "customer": "13085",  # a whole number without '.0'
        "big": "1e+20",
        "f": "2.95",
        "d": "2.950",
        "small": "1.234",
        "ts": "2010-07-01T10:00:00",  # from: as stored
        "ts_frac": "2010-07-01T10:00:00.500000",
        "tstz": "2010-07-01T05:00:00+00:00",
        "day": "2010-07-01",
        "flag": "true",
        "n": "42",
    }
    assert row["created_at"] == "2010-07-01T09:00:00"  # timestamp: a native timestamp is local time too
    assert row["birth_date"] == "1.234"  # decimal_comma never rereads a native number (1.234 is not 1234)


def test_jsonl_values_and_keys_are_read_as_text(con, tmp_path):
    source = tmp_path / "o.jsonl"
    source.write_text(
        '{"Invoice": "A1", "price": 2.95, "When": "2010-07-01 10:00", "odd/key~": "x"}\n\n'
        '{"Invoice": "A2", "price": 1.5, "When": null, "odd/key~": "y"}\n'
    )
    m = orders_mapping(
        tmp_path,
        "order_id: {from: Invoice}\nerp_account_id: {from: odd/key~}\nordered_at: {from: When, timestamp: auto}\n"
        "currency: {from: price, number: true}",
        top="decimal_comma: true\n",
    )
    rows = run(con, m, source, tmp_path / "out")
    assert column(rows, "erp_account_id") == ["x", "y"]
    assert column(rows, "currency") == ["2.95", "1.5"]  # JSON numbers are native: no comma rereading
    assert column(rows, "ordered_at") == ["2010-07-01T10:00:00", None]


def test_a_line_that_is_not_a_json_object_raises_naming_it(con, tmp_path):
    source = tmp_path / "o.jsonl"
    source.write_text('{"Invoice": "A1"}\n\n[1, 2]\n')
    m = orders_mapping(tmp_path, "order_id: {from: Invoice}\nerp_account_id: {value: x}\nordered_at: {value: x}")
    with pytest.raises(MappingError, match="line 3 is not a JSON object"):
        map_file(con, m, source, tmp_path / "out")


# --- reading CSV strictly -----------------------------------------------------------------------------

SIMPLE = "order_id: {from: Invoice}\nerp_account_id: {from: Customer ID}\nordered_at: {from: When}"


def test_a_stray_quote_raises_naming_the_line_and_writes_nothing(con, tmp_path):
    m = orders_mapping(tmp_path, SIMPLE)
    source = write_csv(
        tmp_path / "o.csv",
        'Invoice,Customer ID,When\nA1,17,2010-01-01\nA2,"18,2010-01-02\nA3,19,2010-01-03\nA4,20,2010-01-04\n',
    )
    with pytest.raises(MappingError, match=r"o\.csv: line 3 cannot be read \(unquoted value") as err:
        map_file(con, m, source, tmp_path / "out")
    assert str(m.path) in str(err.value) and "o.csv" in str(err.value)
    assert not list((tmp_path / "out").rglob("*.parquet")) and not list((tmp_path / "out").rglob("*.tmp"))


def test_two_stray_quotes_that_swallow_whole_records_raise(con, tmp_path):
    m = orders_mapping(tmp_path, SIMPLE)
    source = write_csv(tmp_path / "o.csv", 'Invoice,Customer ID,When\nA1,"17,x\nA2,18,2010-01-02\nA3,19",x\n')
    with pytest.raises(MappingError, match="look like records"):
        map_file(con, m, source, tmp_path / "out")


def test_a_record_with_too_few_fields_raises_naming_the_line(con, tmp_path):
    m = orders_mapping(tmp_path, SIMPLE)
    source = write_csv(tmp_path / "o.csv", "Invoice,Customer ID,When\nA1,17,x\nA2,18\nA3,19,x\n")
    with pytest.raises(MappingError, match="line 3 cannot be read"):
        map_file(con, m, source, tmp_path / "out")


def test_a_surplus_delimiter_that_would_shift_values_raises(con, tmp_path):
    m = orders_mapping(tmp_path, SIMPLE)
    source = write_csv(tmp_path / "o.csv", "Invoice,Customer ID,When\nA1,17,x\nA2,18,x,\n")
    with pytest.raises(MappingError, match="line 3 has 4 fields where the header has 3"):
        map_file(con, m, source, tmp_path / "out")


def test_a_file_not_in_the_declared_encoding_raises_naming_the_line(con, tmp_path):
    m = orders_mapping(tmp_path, SIMPLE)
    source = write_csv(tmp_path / "o.csv", "Invoice,Customer ID,When\nA1,x,y\nA2,Müller,y\n", "latin-1")
    with pytest.raises(MappingError, match="o.csv: line 3 is not utf-8; set format.encoding"):
        map_file(con, m, source, tmp_path / "out")


def test_quoted_line_breaks_blank_lines_and_latin1_are_read(con, tmp_path):
    m = orders_mapping(tmp_path, SIMPLE, top="format: {encoding: latin-1}\n")
    source = write_csv(tmp_path / "o.csv", 'Invoice,Customer ID,When\nA1,"Ber\nlin",x\n\nA2,Müller,y\n', "latin-1")
    out = map_file(con, m, source, tmp_path / "out")["erp.orders"]
    assert column(read(con, out.path), "erp_account_id") == ["Ber\nlin", "Müller"]
    assert out.rows_read == out.rows_written == 2


def test_a_file_without_header_names_its_columns_column1_and_on(con, tmp_path):
    m = orders_mapping(
        tmp_path,
        "order_id: {from: column1}\nerp_account_id: {from: column2}\nordered_at: {from: column3}",
        top="format: {header: false}\n",
    )
    source = write_csv(tmp_path / "o.csv", "A1,17,x\nA2,18,y\n")
    assert column(run(con, m, source, tmp_path / "out"), "order_id") == ["A1", "A2"]


def test_a_source_column_missing_from_the_file_names_mapping_file_table_and_column(con, tmp_path):
    m = orders_mapping(tmp_path, "order_id: {from: Invoice}\nerp_account_id: {from: Kunde}\nordered_at: {from: When}")
    with pytest.raises(MappingError) as err:
        map_file(con, m, write_csv(tmp_path / "o.csv", ORDERS_CSV), tmp_path / "out")
    message = str(err.value)
    assert all(s in message for s in (str(m.path), "erp.orders", "erp_account_id", "'Kunde'", "o.csv", "'Invoice'"))


# --- security -----------------------------------------------------------------------------------------


def test_injection_attempts_in_names_constants_regexes_and_formats_are_harmless(con, tmp_path):
    con.execute("create table x as select 1 as a")
    evil = 'a"; drop table x; --'
    quote = "it's'); drop table x; --"
    columns = {
        "order_id": {"from": evil},
        "erp_account_id": {"template": f"{{{evil}}}'||'"},
        "ordered_at": {"from": evil, "timestamp": "%Y'); drop table x; --"},
        "channel": {"value": quote},
        "currency": {"from": evil, "values": {"o'k": quote}},
        "status": {"from": evil, "when": [{"matches": "^o'k$|'\\); drop table x; --", "then": quote}]},
    }
    m = load(tmp_path, yaml.safe_dump({"name": "shop", "tables": {"erp.orders": {"columns": columns}}}))
    source = tmp_path / "o'rders.csv"
    source.write_text(f'"{evil.replace(chr(34), chr(34) * 2)}"\n"o\'k"\n')
    (row,) = run(con, m, source, tmp_path / "out")
    assert row == {
        "order_id": "o'k",
        "erp_account_id": "o'k'||'",
        "ordered_at": "o'k",  # not a timestamp: passed through
        "channel": quote,
        "currency": quote,
        "status": quote,
    }
    assert con.execute("select * from x").fetchall() == [(1,)]  # the table is still there
    sql = mapped_select(m, "erp.orders", "_mapping_source", [evil])
    assert '"a""; drop table x; --"' in sql and "'it''s''); drop table x; --'" in sql


def test_a_time_zone_or_name_carrying_sql_is_refused(tmp_path):
    with pytest.raises(MappingError, match="unknown time zone"):
        orders_mapping(tmp_path, SIMPLE, top='time_zone: "UTC\'; drop table x; --"\n')
    with pytest.raises(MappingError, match="not an identifier"):
        load(tmp_path, 'name: "x; drop"\ntables: {}\n')


# --- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: shop\ntabels: {}\n", r"m.yaml: unknown key 'tabels' \(allowed: name, description"),
        (
            "name: shop\ntables:\n  erp.orders:\n    columns:\n      order_id: {from: a, wen: x}\n",
            r"m.yaml: table erp.orders column order_id: unknown key 'wen'",
        ),
        ("name: shop\ntables:\n  erp.ordres:\n    columns: {}\n", r"table erp.ordres: not a contract table"),
        (
            "name: shop\ntables:\n  erp.orders:\n    columns:\n      order_nr: {from: a}\n",
            r"table erp.orders column order_nr: not a column of erp.orders",
        ),
        (
            "name: shop\ntables:\n  erp.orders:\n    columns:\n      order_id: {from: a}\n",
            r"table erp.orders: required column\(s\) erp_account_id, ordered_at, channel, currency, status not mapped",
        ),
        (
            "name: shop\ntables:\n  erp.orders:\n    columns:\n      order_id: {from: a, value: b}\n",
            r"column order_id: give exactly one of from, template, value \(found from, value\)",
        ),
        (
            "name: shop\ntables:\n  erp.orders:\n    columns:\n"
            "      order_id: {from: a, when: [{matches: '(?=a)', then: b}]}\n",
            r"column order_id when case 1 matches: regular expression '\(\?=a\)' not accepted by DuckDB",
        ),
        (
            "name: shop\ntables:\n  erp.orders:\n    columns:\n      order_id: {from: a, timestamp: '%Q'}\n",
            r"column order_id timestamp: invalid timestamp format '%Q'",
        ),
        (
            "name: shop\ntime_zone: Europe/london\ntables: {}\n",
            r"unknown time zone 'Europe/london' \(did you mean Europe/London",
        ),
        ("name: erp\ntables: {}\n", r"name: 'erp' is a landing folder of the contract"),
        ("name: shop\nname: other\ntables: {}\n", r"line 2: key 'name' given twice"),
        (
            "name: shop\ntables:\n  erp.orders:\n    columns:\n      order_id: {from: a, agg: min}\n",
            r"column order_id: agg needs one_row_per",
        ),
        (
            "name: shop\ntables:\n  erp.orders:\n    columns:\n      order_id: {template: 'a{b'}\n",
            r"template 'a\{b': '\{' at position 1",
        ),
    ],
)
def test_invalid_mappings_are_refused_with_a_message_naming_the_place(tmp_path, text, message):
    with pytest.raises(MappingError, match=message):
        load(tmp_path, text)


def test_yaml_scalars_stay_text_as_written(con, tmp_path):
    m = orders_mapping(
        tmp_path,
        "order_id: {value: 1.10}\nerp_account_id: {from: Status, values: {P: Yes, R: 0x1F}}\n"
        "ordered_at: {value: 2010-01-01}",
    )
    rows = run(con, m, write_csv(tmp_path / "o.csv", ORDERS_CSV), tmp_path / "out")
    assert rows[0]["order_id"] == "1.10" and rows[0]["ordered_at"] == "2010-01-01"
    assert column(rows, "erp_account_id") == ["Yes", "0x1F", "X"]


# --- writing ------------------------------------------------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_mapping_twice_gives_byte_identical_files_and_leaves_them_untouched(con, tmp_path):
    m = load_mapping(ONLINE_RETAIL)
    source = write_sample(tmp_path)
    con.execute("set preserve_insertion_order = false")  # as the ingest leaves it while it runs
    first = {
        t: (f.path, digest(f.path), f.path.stat().st_mtime_ns)
        for t, f in map_file(con, m, source / "online_retail_ii_2009_2010.parquet", tmp_path / "out").items()
    }
    second = map_file(con, m, source / "online_retail_ii_2009_2010.parquet", tmp_path / "out")
    for table, (path, sha, mtime) in first.items():
        assert second[table].path == path and digest(path) == sha and path.stat().st_mtime_ns == mtime
        assert (
            path == tmp_path / "out" / "erp" / table.split(".")[1] / "online_retail__online_retail_ii_2009_2010.parquet"
        )
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".")]  # no temporary files left
    assert con.execute("select current_setting('preserve_insertion_order')").fetchone() == (False,)
    assert con.execute("select count(*) from duckdb_tables() where table_name like '_mapping%'").fetchone() == (0,)


def test_a_mapped_file_with_other_content_is_never_replaced_unless_asked(con, tmp_path):
    m = orders_mapping(tmp_path, SIMPLE)
    source = write_csv(tmp_path / "o.csv", "Invoice,Customer ID,When\nA1,1,x\n")
    out = map_file(con, m, source, tmp_path / "out")["erp.orders"].path
    delivered = out.read_bytes()
    write_csv(source, "Invoice,Customer ID,When\nA1,2,x\n")  # the same file name, other content
    with pytest.raises(MappingError, match="exists with other content"):
        map_file(con, m, source, tmp_path / "out")
    assert out.read_bytes() == delivered and [p.name for p in out.parent.iterdir()] == [out.name]
    map_file(con, m, source, tmp_path / "out", overwrite=True)
    assert column(read(con, out), "erp_account_id") == ["2"]


def test_source_files_are_found_at_any_depth_and_named_by_their_path(con, tmp_path):
    m = orders_mapping(tmp_path, SIMPLE)
    landing = tmp_path / "landing"
    write_csv(landing / "shop" / "2026" / "11" / "o.csv", "Invoice,Customer ID,When\nA1,1,x\n")
    write_csv(landing / "shop" / "o.csv", "Invoice,Customer ID,When\nA2,2,y\n")
    write_csv(landing / "shop" / "o.csv.part", "Invoice\n")  # being written: not a source file
    assert [p.relative_to(landing).as_posix() for p in source_files(m, landing)] == ["shop/2026/11/o.csv", "shop/o.csv"]
    mapped = map_landing(con, m, landing, tmp_path / "out")
    assert sorted(f["erp.orders"].path.name for f in mapped.values()) == [
        "shop__2026__11__o.parquet",
        "shop__o.parquet",
    ]


def test_check_mapping_counts_values_it_could_not_convert(con, tmp_path):
    m = orders_mapping(
        tmp_path,
        """
        order_id: {from: Invoice}
        erp_account_id: {template: "OR{Customer ID}"}
        ordered_at: {from: When, timestamp: "%Y-%m-%d %H:%M"}
        status: {from: Status, values: {P: completed, R: returned}}
        currency: {from: Total, number: true}
        """,
    )
    source = write_csv(tmp_path / "o.csv", ORDERS_CSV)
    (check,) = check_mapping(con, m, [source])
    assert (check.source_rows, check.mapped_rows) == (3, 3)
    assert check.unconverted == {"ordered_at": 1, "currency": 1, "status": 1}
    assert check.examples == {"ordered_at": "not a date", "currency": "oops", "status": "X"}
    assert check.empty_required == {"erp_account_id": 1}
    assert not (tmp_path / "out").exists()


# --- through the real ingest --------------------------------------------------------------------------


def write_sample(folder: Path) -> Path:
    """Two tiny parquet files shaped like Online Retail II's (column names and types of each year, an
    overlapping invoice, a cancellation, guest checkouts)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    # the real files' types: quantities BIGINT, prices and customer ids DOUBLE
    first = (
        "Invoice, StockCode, Description, Quantity::bigint as Quantity, InvoiceDate, Price::double as Price, "
        '"Customer ID"::double as "Customer ID", Country'
    )
    second = (
        "InvoiceNo, StockCode, Description, Quantity::bigint as Quantity, InvoiceDate, "
        "UnitPrice::double as UnitPrice, CustomerID::double as CustomerID, Country"
    )
    con.execute(
        f"""copy (select {{cast}} from (values
                ('1001', 'A1', 'LAMP', 2, '2009-12-01 09:00:00', 3.5, 12346.0, 'United Kingdom'),
                ('1001', 'A2', 'MUG', 1, '2009-12-01 09:00:00', 1.25, 12346.0, 'United Kingdom'),
                ('C1002', 'A1', 'LAMP', -1, '2010-01-05 10:00:00', 3.5, 12346.0, 'United Kingdom'),
                ('1003', 'B9', 'CARD', 5, '2010-12-09 12:00:00', 0.5, null, 'France')
            ) as t("Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"))
            to '{folder / "online_retail_ii_2009_2010.parquet"}' (format parquet)""".replace("{cast}", first)
    )
    con.execute(
        f"""copy (select {{cast}} from (values
                ('1003', 'B9', 'CARD', 5, timestamp '2010-12-09 12:00:00', 0.5, null, 'France'),
                ('2001', 'A2', 'MUG', 3, timestamp '2011-06-01 08:00:00', 1.25, 12347.0, 'Iceland'),
                ('2002', 'B', 'Adjust bad debt', 1, timestamp '2011-04-01 08:00:00', -100.0, null, 'United Kingdom')
            ) as t("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
                   "Country"))
            to '{folder / "online_retail_2010_2011.parquet"}' (format parquet)""".replace("{cast}", second)
    )
    con.close()
    return folder


def write_fx_rates(landing: Path, currencies: list[str]) -> None:
    rates = landing / "erp" / "fx_rates" / "rates.csv"
    rates.parent.mkdir(parents=True, exist_ok=True)
    rates.write_text("rate_date,currency,rate_to_base\n" + "".join(f"2010-01-01,{c},1.0\n" for c in currencies))


def reconciles(report) -> bool:
    return all(f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_already_loaded for f in report.files)


def test_the_online_retail_example_maps_files_that_the_ingest_loads_and_reconciles(con, tmp_path):
    m = load_mapping(ONLINE_RETAIL)
    source = write_sample(tmp_path / "source")
    landing = tmp_path / "landing"
    for f in ("online_retail_ii_2009_2010.parquet", "online_retail_2010_2011.parquet"):
        map_file(con, m, source / f, landing)
    lines = read(con, landing / "erp" / "order_lines" / "online_retail__online_retail_ii_2009_2010.parquet")
    assert column(lines, "order_line_id") == ["1001-0001", "1001-0002", "C1002-0001", "1003-0001"]
    assert column(lines, "unit_price") == ["3.5", "1.25", "3.5", "0.5"]
    orders = read(con, landing / "erp" / "orders" / "online_retail__online_retail_ii_2009_2010.parquet")
    assert orders[1] == {
        "order_id": "C1002",
        "erp_account_id": "OR12346",  # the customer id is a double: 12346.0
        "ordered_at": "2010-01-05T10:00:00",  # GMT in January
        "channel": "web",
        "currency": "GBP",
        "status": "cancelled",
    }
    write_fx_rates(landing, ["GBP", "EUR"])
    report = ingest_landing(con, landing, settle_seconds=0)
    assert not report.failures and reconciles(report)
    reasons = dict(
        con.execute("select source_table || ' ' || reason_kind, count(*) from audit.quarantine group by all").fetchall()
    )
    assert reasons == {
        "erp.accounts missing_required": 2,  # each file's group of lines without a customer
        "erp.orders missing_required": 3,  # guest checkouts 1003 (in both files) and 2002
        "erp.order_lines orphan_reference": 2,  # the lines of 1003 (in both files)
        "erp.order_lines negative_amount": 1,  # 2002's bad debt line (its first reason; its order is missing too)
        "erp.order_lines negative_quantity": 1,  # the cancellation
    }
    # the second file's InvoiceDate is a native TIMESTAMP in British Summer Time in June: 07:00 UTC
    (ordered_at,) = con.execute("select ordered_at from erp.orders where order_id = '2001'").fetchone()
    assert str(ordered_at) == "2011-06-01 07:00:00"


def test_the_shop_orders_example_loads_with_no_quarantine(con, tmp_path):
    m = load_mapping(SHOP / "mappings" / "shop_orders.yaml")
    out = tmp_path / "landing"
    mapped = map_landing(con, m, SHOP / "landing", out)
    (files,) = mapped.values()
    assert {t: (f.rows_written, f.rows_read) for t, f in files.items()} == {
        "erp.accounts": (15, 20),
        "erp.orders": (20, 20),
        "erp.order_lines": (20, 20),
    }
    checks = check_mapping(con, m, source_files(m, SHOP / "landing"))
    assert all(not c.unconverted and not c.empty_required for c in checks)
    write_fx_rates(out, ["EUR", "CHF"])
    report = ingest_landing(con, out, settle_seconds=0)
    assert not report.failures and reconciles(report)
    assert con.execute("select count(*) from audit.quarantine").fetchone() == (0,)
    assert con.execute("select count(*) from erp.orders").fetchone() == (20,)
    first = con.execute(
        "select o.ordered_at, l.unit_price, o.status, a.created_at from erp.orders o "
        "join erp.order_lines l using (order_id) join erp.accounts a using (erp_account_id) where order_id = '100231'"
    ).fetchone()
    assert str(first[0]) == "2026-11-03 08:15:00" and str(first[1]) == "1234.56" and first[2] == "completed"
    assert str(first[3]) == "2026-11-03 08:15:00"  # the account starts with its first order
    assert con.execute("select currency from erp.orders where order_id = '100247'").fetchone() == ("EUR",)  # default


def test_a_whole_decimal_id_reads_as_an_integer(tmp_path):
    from warehouse.mapping import map_file, parse_mapping

    con = duckdb.connect()
    source = tmp_path / "export.parquet"
    con.execute(f"copy (select 12346.0 as id, 2.950::decimal(6,3) as price) to '{source}' (format parquet)")
    mapping = parse_mapping(
        {
            "name": "shop",
            "tables": {
                "erp.accounts": {
                    "columns": {"erp_account_id": {"template": "OR{id}"}, "created_at": {"value": "2024-01-01"}}
                }
            },
        },
        tmp_path / "m.yaml",
    )
    (out,) = map_file(con, mapping, source, tmp_path / "out").values()
    assert con.execute(f"select erp_account_id from '{out.path}'").fetchone()[0] == "OR12346"
