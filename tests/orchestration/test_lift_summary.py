"""The run summary's playbook lift lines (`orchestration/cli/summary.py: lift_line`) and the query behind them
(`warehouse/summary.py: playbook_lift`), on hand-made rows of segments.playbook_lift."""

from __future__ import annotations

from datetime import date

import duckdb

from orchestration.cli.summary import lift_line
from warehouse.summary import playbook_lift

MEASURED = {
    "action_name": "winback_email",
    "lift_window_days": 30,
    "lift_status": "measured",
    "treated_customers": 1_204,
    "holdout_customers": 131,
    "purchase_rate_lift": 0.0612,
    "purchase_rate_lift_ci_low": -0.0101,
    "purchase_rate_lift_ci_high": 0.1326,
    "min_group_customers": 30,
    "open_windows": 0,
    "next_window_end_date": None,
}


def test_a_measured_lift_shows_points_interval_and_groups():
    assert lift_line(MEASURED) == "+6.1 pts [-1.0, +13.3]  treated 1,204, holdout 131"
    waiting = {**MEASURED, "open_windows": 460, "next_window_end_date": date(2026, 12, 21)}
    assert lift_line(waiting).endswith("holdout 131; 460 open, the next closes 2026-12-21")


def test_no_closed_window_and_too_few_customers_say_why():
    empty = {
        **MEASURED,
        "lift_status": "no_closed_window",
        "treated_customers": 0,
        "holdout_customers": 0,
        "purchase_rate_lift": None,
        "purchase_rate_lift_ci_low": None,
        "purchase_rate_lift_ci_high": None,
        "open_windows": 334,
        "next_window_end_date": date(2026, 12, 21),
    }
    assert lift_line(empty) == "no lift yet: no window has closed; 334 open, the next closes 2026-12-21"
    few = {**MEASURED, "lift_status": "too_few_holdout", "holdout_customers": 12}
    assert (
        lift_line(few) == "too few holdout customers (< 30) to say: +6.1 pts [-1.0, +13.3]  treated 1,204, holdout 12"
    )
    none = {**few, "holdout_customers": 0, "purchase_rate_lift_ci_low": None, "purchase_rate_lift": None}
    assert lift_line(none) == "no lift: treated 1,204, holdout 0 (a group has fewer than 2)"


def test_the_summary_query_reads_the_mart_or_nothing():
    con = duckdb.connect()
    assert playbook_lift(con) == []
    con.execute("create schema segments")
    con.execute(
        """create table segments.playbook_lift as select 'winback_email' as action_name, 30 as lift_window_days,
           'measured' as lift_status, 1204::bigint as treated_customers, 131::bigint as holdout_customers,
           0.0612::double as purchase_rate_lift, -0.0101::double as purchase_rate_lift_ci_low,
           0.1326::double as purchase_rate_lift_ci_high,
           30 as min_group_customers, 0::bigint as open_windows, null::date as next_window_end_date,
           0.5 as treated_purchase_rate"""
    )
    [row] = playbook_lift(con)
    assert row == MEASURED and lift_line(row).startswith("+6.1 pts")
