"""The measured lift of the playbooks recovers a planted treatment effect within its confidence interval.

End to end on 2,000 demo customers: a user project whose playbooks hold out half of the customers (the
embedded 10% would leave a few dozen holdout customers per action at this size), one whole pipeline run that
emits the outbox, then the demo's next 30 days of orders (`demo/increment.py`) with a known effect planted for
the customers the win-back e-mail was sent to: +0.3 probability of buying in the period. The other actions
got no effect. To keep to one pipeline run (CI time), the delivery is then loaded by the real ingest and dbt
rebuilds the order models and `segments.playbook_lift` (window 30 days, the mart's default) on top of the
first run's outbox - what a second run would do for the lift, without its identity, training and scoring
(which would only add open windows). Real components only (DuckDB file, dbt, Dagster in-process, MLflow).
"""

from __future__ import annotations

import io
import shutil
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
import yaml

from demo.generator import generate
from demo.increment import generate_increment
from orchestration.cli.run import run_pipeline
from orchestration.cli.summary import lift_line, print_summary
from orchestration.dbt import parse_target, run_dbt
from orchestration.project import init_project, load_project, lock_project
from orchestration.settings import get_settings
from warehouse.connections import connect
from warehouse.ingest import ingest_landing

pytestmark = pytest.mark.pipeline_runs(1)

CUSTOMERS = 2_000
AS_OF = date(2026, 6, 30)  # the demo's last day: the first run's actions are decided on it
WINDOW_DAYS = 30  # segments.playbook_lift's default lift_window_days; the increment covers exactly that window
EFFECT = 0.3
PLANTED = "winback_email"
UNTREATED = "welcome_series"  # the other action with groups of a measurable size, no effect planted
LIFT = "select * from segments.playbook_lift order by action_name"
COMPILED = "compiled/segments_warehouse/models/marts/segments/playbook_lift.sql"


def lift_rows(con: duckdb.DuckDBPyConnection, sql: str = LIFT) -> dict[str, dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def summary(result) -> str:
    """The run summary as `segments run` prints it, read from the warehouse as it is now."""
    out = io.StringIO()
    print_summary(get_settings(), result, out=out)
    return out.getvalue()


def load_and_rebuild(settings, landing, target) -> list[str]:
    """The new landing files through the real ingest, then `dbt build` of the order models and the lift
    (the home's partial-parse state copied into `target`); returns the files loaded."""
    with connect(settings.warehouse_path) as con:
        report = ingest_landing(con, landing, run_id="playbook-lift-test", settle_seconds=0)
    target.mkdir(parents=True, exist_ok=True)
    parsed = parse_target(settings.home) / "partial_parse.msgpack"
    if parsed.is_file():
        shutil.copyfile(parsed, target / parsed.name)
    selection = "int_orders_converted orders playbook_lift"
    args = ["build", "--select", selection, "--target-path", str(target), "--log-path", str(target)]
    proc = run_dbt(args, settings.warehouse_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sorted(f.source_file for f in report.files if f.status == "loaded")


@pytest.fixture(scope="module")
def lift(segments_home, tmp_path_factory):
    """The run, the planted delivery, the rebuild; yields the settings, the mart and the run summary before and
    after the delivery, the mart as the run published it, the increment and the compiled SQL of the mart."""
    project = tmp_path_factory.mktemp("project") / "lift"
    init_project(project)
    books = yaml.safe_load((project / "playbooks.yaml").read_text())
    books.update(holdout_share=0.5, version="1.1.0-lift-test")
    (project / "playbooks.yaml").write_text(yaml.safe_dump(books, sort_keys=False))
    lock_project(load_project(project))
    mp = pytest.MonkeyPatch()
    mp.setenv("SEGMENTS_PROJECT", str(project))
    try:
        demo = segments_home / "demo"
        generate(demo, customers=CUSTOMERS, seed=11, as_of=AS_OF)
        run = run_pipeline(get_settings(), landing=demo / "landing")
        assert run.success
        settings = get_settings()
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            before = lift_rows(con)
        with duckdb.connect(str(settings.serving_dir / "bi.duckdb"), read_only=True) as con:
            published = lift_rows(con)
        first_summary = summary(run.result)
        increment = generate_increment(
            demo,
            days=WINDOW_DAYS,
            seed=1,
            treatment_effect=EFFECT,
            warehouse=settings.warehouse_path,
            treated_actions=[PLANTED],
        )
        target = tmp_path_factory.mktemp("dbt_target")
        loaded = load_and_rebuild(settings, demo / "landing", target)
        assert loaded == ["erp/order_lines/part-0001.csv", "erp/orders/part-0001.csv"]
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            after = lift_rows(con)
        yield {
            "settings": settings,
            "before": before,
            "published": published,
            "after": after,
            "summaries": (first_summary, summary(run.result)),
            "increment": increment,
            "compiled": (target / COMPILED).read_text(),
        }
    finally:
        mp.undo()


def test_no_window_has_closed_after_the_first_run(lift):
    before = lift["before"]
    assert before and {r["lift_status"] for r in before.values()} == {"no_closed_window"}
    for row in before.values():
        assert row["treated_customers"] == row["holdout_customers"] == 0 and row["purchase_rate_lift"] is None
        assert row["next_window_end_date"] == AS_OF + timedelta(days=WINDOW_DAYS)
    line = (
        f"{PLANTED:<24} no lift yet: no window has closed; {before[PLANTED]['open_windows']:,} open, the next closes "
    )
    assert line + str(AS_OF + timedelta(days=WINDOW_DAYS)) in lift["summaries"][0]


def test_the_planted_effect_lies_in_the_measured_interval(lift):
    row = lift["after"][PLANTED]
    assert row["lift_status"] == "measured" and not row["is_too_small"]
    assert row["treated_customers"] >= 30 and row["holdout_customers"] >= 30
    assert row["purchase_rate_lift_ci_low"] <= EFFECT <= row["purchase_rate_lift_ci_high"], row
    assert row["purchase_rate_lift_ci_low"] > 0, row  # and it is told apart from no effect
    assert row["revenue_per_customer_lift_ci_low_base"] > 0, row  # buying more often, they spend more


def test_an_action_without_an_effect_measures_none(lift):
    row = lift["after"][UNTREATED]
    assert row["lift_status"] == "measured", row
    assert row["purchase_rate_lift_ci_low"] <= 0 <= row["purchase_rate_lift_ci_high"], row


def test_swapping_treated_and_holdout_flips_the_lift(lift):
    """The deliberate defect: the mart's own SQL with the groups swapped measures minus the effect, with the
    interval mirrored - so the planted effect is measured on the right side of the comparison."""
    sql = lift["compiled"]
    selected = "select action_id, action_name, customer_id, is_holdout, created_at"
    assert sql.count(selected) == 1
    swapped = sql.replace(
        selected, "select action_id, action_name, customer_id, not is_holdout as is_holdout, created_at"
    )
    with duckdb.connect(str(lift["settings"].warehouse_path), read_only=True) as con:
        flipped = lift_rows(con, f"select * from ({swapped}) order by action_name")
    row, bad = lift["after"][PLANTED], flipped[PLANTED]
    assert bad["purchase_rate_lift"] == pytest.approx(-row["purchase_rate_lift"])
    assert bad["purchase_rate_lift_ci_high"] == pytest.approx(-row["purchase_rate_lift_ci_low"])
    assert not bad["purchase_rate_lift_ci_low"] <= EFFECT <= bad["purchase_rate_lift_ci_high"]


def test_measured_rates_recount_the_delivered_orders(lift):
    """The group sizes and purchase rates equal a count from the outbox and the increment's order file: every
    window has closed now, and every order in them came with the increment."""
    orders = pd.read_csv(lift["increment"].files[0], dtype=str)
    with duckdb.connect(str(lift["settings"].warehouse_path), read_only=True) as con:
        con.register("delivered", orders)
        counts = con.execute(
            """with buyers as (
                   select distinct r.customer_id from delivered as d
                   inner join identity.customer_source_records as r
                       on r.source_system = 'erp' and r.source_record_id = d.erp_account_id
               )
               select a.action_name, a.is_holdout, count(*), count(b.customer_id)
               from segments.segment_actions as a left join buyers as b using (customer_id)
               group by all"""
        ).fetchall()
    after = lift["after"]
    assert {a for a, *_ in counts} == set(after) and all(r["open_windows"] == 0 for r in after.values())
    for action, holdout, n, bought in counts:
        group = "holdout" if holdout else "treated"
        assert after[action][f"{group}_customers"] == n
        assert after[action][f"{group}_purchase_rate"] == pytest.approx(bought / n)


def test_the_run_summary_has_a_line_per_action(lift):
    text = lift["summaries"][1]
    assert f"Playbook lift (segments.playbook_lift): purchase rate within {WINDOW_DAYS} days" in text
    for action, row in lift["after"].items():
        assert f"  {action:<24} {lift_line(row)}" in text
    row = lift["after"][PLANTED]
    assert (
        f"{100 * row['purchase_rate_lift']:+.1f} pts [{100 * row['purchase_rate_lift_ci_low']:+.1f}, "
        f"{100 * row['purchase_rate_lift_ci_high']:+.1f}]  treated {row['treated_customers']:,}, "
        f"holdout {row['holdout_customers']:,}"
    ) in text


def test_the_lift_is_published_with_the_bi_copy(lift):
    assert lift["published"] == lift["before"]
