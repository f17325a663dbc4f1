"""The coverage check of segments.customer_segments on a real DuckDB file: a clean table holds, and each
planted defect (a missing, duplicated, stale or unknown-family row) is counted where it belongs and nowhere else."""

import duckdb
import pytest

from ml.segmentation.store import SEGMENT_FAMILIES, segment_coverage

VERSIONS = {"behavioural": "7", "rfm": "rfm-1", "predictive": "3+4"}
CUSTOMERS = ("cus_a", "cus_b", "cus_c")


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as c:
        c.execute("create schema marts; create schema segments")
        c.execute("create table marts.customers (customer_id varchar)")
        c.executemany("insert into marts.customers values (?)", [[cid] for cid in CUSTOMERS])
        c.execute(
            "create table segments.customer_segments "
            "(customer_id varchar, segment_family varchar, model_version varchar)"
        )
        c.executemany(
            "insert into segments.customer_segments values (?, ?, ?)",
            [[cid, family, VERSIONS[family]] for cid in CUSTOMERS for family in SEGMENT_FAMILIES],
        )
        yield c


def test_one_current_segment_per_customer_and_family_holds(con):
    coverage = segment_coverage(con, VERSIONS)
    assert coverage.holds and coverage.customers == len(CUSTOMERS)
    assert set(coverage.per_family) == set(SEGMENT_FAMILIES) == set(VERSIONS)


DEFECTS = {
    "customers_without_segment": "delete from segments.customer_segments "
    "where customer_id = 'cus_b' and segment_family = 'predictive'",
    "customers_with_several_segments": "insert into segments.customer_segments values ('cus_a', 'predictive', '3+4')",
    "rows_not_from_current_version": "update segments.customer_segments set model_version = '2+4' "
    "where customer_id = 'cus_c' and segment_family = 'predictive'",
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_planted_predictive_defect_fails_its_own_count(con, defect):
    con.execute(DEFECTS[defect])
    coverage = segment_coverage(con, VERSIONS)
    assert not coverage.holds
    counts = {(family, name): n for family, c in coverage.per_family.items() for name, n in c.items()}
    assert {k: n for k, n in counts.items() if n} == {("predictive", defect): 1}
    assert coverage.rows_of_unknown_family == 0


def test_rows_of_a_family_nobody_writes_fail(con):
    con.execute("insert into segments.customer_segments values ('cus_a', 'lifetime', '1')")
    coverage = segment_coverage(con, VERSIONS)
    assert not coverage.holds and coverage.rows_of_unknown_family == 1
