"""The data tests of segments.customer_predictions fail on planted defects (a real `dbt test` on a DuckDB file).

The relations are created directly (dbt tests read tables, they do not need dbt to have built them): a clean
table passes; a churn probability above 1, an unknown not-predicted reason, a duplicated customer and a
customer unknown to marts.customers each fail their own test, and no other.
"""

from __future__ import annotations

import duckdb

from orchestration.dbt import run_dbt

ROWS = [
    ("cus_a", 0.2, None),
    ("cus_b", 0.9, None),
    ("cus_c", None, "no_profiling_consent"),
]


def build(path, rows) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create schema segments")
        con.execute("create table marts.customers as select unnest(['cus_a', 'cus_b', 'cus_c']) as customer_id")
        con.execute(
            """create table segments.customer_predictions (
                   customer_id varchar, as_of_date date, horizon_days integer, churn_probability double,
                   expected_orders double, expected_revenue_base double, not_predicted_reason varchar,
                   churn_model_version varchar, value_model_version varchar, definition_version varchar,
                   predicted_at timestamp, dagster_run_id varchar)"""
        )
        con.executemany(
            """insert into segments.customer_predictions values
               (?, date '2026-01-01', 90, ?, 1.0, 10.0, ?, '1', '1', '1.1.0', timestamp '2026-01-01', 'run')""",
            rows,
        )


def failing_tests(tmp_path, rows) -> set[str]:
    path = tmp_path / "warehouse.duckdb"
    build(path, rows)
    proc = run_dbt(
        ["test", "--select", "customer_predictions", "--target-path", str(tmp_path / "target")],
        path,
        # eager: the relationships test to marts.customers runs although only one of its parents is selected
        # (a pipeline run earlier in the same test worker leaves "cautious" in the environment)
        {"DBT_LOG_PATH": str(tmp_path / "logs"), "DBT_INDIRECT_SELECTION": "eager"},
    )
    failed = {line.split("FAIL", 1)[1].split()[1] for line in proc.stdout.splitlines() if " FAIL " in line}
    assert proc.returncode == (1 if failed else 0), proc.stdout[-3000:]
    return failed


def test_each_planted_defect_fails_its_own_test(tmp_path):
    """One table with four defects, each of which only one test can see (one dbt start-up, not four)."""
    defects = [
        ("cus_a", 0.5, None),  # customer twice
        ("cus_d", 1.4, None),  # churn probability above 1 (cus_d is no customer either: see below)
        ("cus_c", None, "bad_luck"),  # unknown reason
    ]
    failed = failing_tests(tmp_path, [*ROWS, *defects])
    prefixes = (
        "unique_customer_predictions_customer_id",
        "value_between_customer_predictions_churn_probability",
        "relationships_customer_predictions_customer_id",
        "accepted_values_customer_predictions_not_predicted",
    )
    assert {p for p in prefixes for t in failed if t.startswith(p)} == set(prefixes), failed
    assert len(failed) == len(prefixes), failed


def test_clean_predictions_pass(tmp_path):
    assert failing_tests(tmp_path, ROWS) == set()
