"""End to end: generate ~2,000 customers, materialize the whole graph in-process twice, reconcile layers.

Real components only: a DuckDB file, a real `dbt build`, Dagster in-process runs on a temp instance,
an MLflow SQLite registry and GX validations.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from demo.generator import generate
from ml.model_registry import CHALLENGER, CHAMPION, REUSED_BY_PREFIX, SEGMENTATION_MODEL, client, version_by_alias
from ml.prediction.definition import load_prediction_definition
from ml.segmentation.store import SEGMENT_FAMILIES
from orchestration.cli import main
from orchestration.cli.run import run_pipeline
from orchestration.settings import get_settings
from warehouse.contracts import CONTRACTS
from warehouse.reconcile import ledger_discrepancies
from warehouse.serving import DUCKDB_FILE

pytestmark = pytest.mark.pipeline_runs(4)

CUSTOMERS = 2_000
# the delivery run validates GX suites on samples of this many rows (SEGMENTS_GX_SAMPLE_ROWS): fewer than
# marts.customers holds, more than the 40 CRM rows that run loads
GX_SAMPLE_CAP = 1_000
RAW_TO_STAGING = {c.qualified_name: f"staging.stg_{c.source}__{c.table}" for c in CONTRACTS}
# history tables: every run appends its rows
HISTORY_TABLES = (
    "ml.segment_profiles",
    "staging.stg_ml__segment_profiles",
    "segments.segment_profiles",
    "ml.segment_scoring_runs",
    "staging.stg_ml__segment_scoring_runs",
)
# change history: grows when a customer changes segment (a retrained model may rename a few), and the
# transitions exist from the second run on
CHANGE_TABLES = (
    "ml.segment_membership_history",
    "staging.stg_ml__segment_membership_history",
    "segments.segment_membership_history",
    "segments.segment_transitions",
    "segments.segment_transition_customers",
)


def full_refresh_sql(model: str, warehouse_path: Path, target: Path) -> str:
    """The SQL `dbt build --full-refresh` runs for a model (compiled into `target`, the warehouse untouched)."""
    from orchestration.dbt import DBT_PROJECT_DIR

    env = {**os.environ, "SEGMENTS_WAREHOUSE_PATH": str(warehouse_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "compile",
            "--full-refresh",
            "--quiet",
            "--select",
            model,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
            "--log-path",
            str(target),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return next((target / "compiled").rglob(f"{model}.sql")).read_text()


def table_counts(con) -> dict[str, int]:
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables where table_schema in "
        "('crm', 'erp', 'support', 'events', 'staging', 'intermediate', 'marts', 'ml', 'segments')"
    ).fetchall()
    return {f"{s}.{t}": con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables}


def gx_check_evaluations(settings) -> dict[str, dict]:
    """The GX asset-check evaluations of the instance's latest run, by `<asset> / <check>`: passed, how
    many error-severity expectations failed, the rows in scope, validated and whether they were sampled
    (checks with no rows in scope left out)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        run_id = instance.get_runs(limit=1)[0].run_id
        entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = {}
    for entry in entries:
        data = entry.dagster_event.event_specific_data
        meta = {k: v.value for k, v in data.metadata.items()}
        if "rows_in_scope" in meta:
            evaluations[f"{'.'.join(data.asset_key.path)} / {data.check_name}"] = {
                "passed": data.passed,
                **{k: meta[k] for k in ("failed_error", "rows_in_scope", "rows_validated", "sampled")},
            }
    return evaluations


@pytest.fixture(scope="module")
def pipeline(segments_home):
    """Generate, run twice (the second with --force: a full rebuild on unchanged files); yield the
    settings and the table counts after each run, plus those after a third, plain run, and the GX
    check evaluations of the forced run (every row validated: the default cap is far above these tables)."""
    home = segments_home
    generate(home / "demo", customers=CUSTOMERS, seed=7)
    landing = home / "demo" / "landing"
    counts, evaluations = [], []
    for force, nothing_new in ((False, False), (True, False), (False, True)):  # the third run finds no new file
        outcome = run_pipeline(get_settings(), landing=landing, force=force)
        assert outcome.success and outcome.nothing_new == nothing_new
        evaluations.append(gx_check_evaluations(get_settings()))
        with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
            counts.append(table_counts(con))
    return get_settings(), counts[:2], home, counts[2], evaluations[1]


@pytest.fixture
def con(pipeline):
    settings, *_ = pipeline
    c = duckdb.connect(str(settings.warehouse_path), read_only=True)
    yield c
    c.close()


def test_every_file_reconciles(con):
    assert ledger_discrepancies(con) == []
    read, loaded, quarantined = con.execute(
        "select sum(rows_read), sum(rows_loaded), sum(rows_quarantined) from audit.ingest_ledger "
        "where status = 'loaded'"
    ).fetchone()
    assert read == loaded + quarantined and quarantined > 0


def test_raw_equals_staging_for_every_table(con):
    for raw, stg in RAW_TO_STAGING.items():
        raw_n = con.execute(f"select count(*) from {raw}").fetchone()[0]
        assert raw_n > 0, raw
        assert raw_n == con.execute(f"select count(*) from {stg}").fetchone()[0], (raw, stg)


def test_marts_reconcile_with_staging(con):
    n = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    assert n("select count(*) from marts.orders") == n("select count(*) from staging.stg_erp__orders")
    assert n("select count(*) from marts.order_lines") == n("select count(*) from staging.stg_erp__order_lines")
    assert n("select count(*) from marts.support_tickets") == n("select count(*) from staging.stg_support__tickets")
    customers = n("select count(*) from marts.customers")
    assert customers == n("select count(distinct customer_id) from marts.customer_source_records")
    assert customers == n("select count(*) from marts.customer_features")
    # every CRM record and ERP account resolves to exactly one customer
    assert n("select count(*) from marts.customer_source_records where source_system = 'crm'") == n(
        "select count(*) from crm.customers"
    )
    # money: the sum of order lines in the base currency equals the orders' revenue
    lines, orders = con.execute(
        "select (select sum(net_amount_base) from marts.order_lines), (select sum(net_revenue_base) from marts.orders)"
    ).fetchone()
    assert lines == pytest.approx(orders, rel=1e-9)
    # matching on e-mail merges some records, but never all: customers within a sane band of persons
    assert CUSTOMERS * 0.8 < customers < CUSTOMERS * 2.5


def test_every_customer_has_one_segment_per_family(pipeline, con):
    from ml.segmentation.rfm import RFM_RULES_VERSION

    settings, *_ = pipeline
    champion = str(version_by_alias(settings.mlflow_tracking_uri, SEGMENTATION_MODEL, CHAMPION).version)
    customers = con.execute("select count(*) from marts.customers").fetchall()[0][0]
    uri = settings.mlflow_tracking_uri
    churn, value = (str(version_by_alias(uri, name, CHAMPION).version) for name in ("churn_model", "value_model"))
    expected = {
        "behavioural": (champion, SEGMENTATION_MODEL),
        "rfm": (RFM_RULES_VERSION, "rfm_rules"),
        "predictive": (f"{churn}+{value}", "churn_model+value_model"),
    }
    for family, (version, model) in expected.items():
        total, distinct, from_version, segments, model_min, model_max = con.execute(
            """select count(*), count(distinct s.customer_id), count(*) filter (where s.model_version = ?),
                      count(distinct s.segment_name) filter (where not s.is_fallback),
                      min(s.model_name), max(s.model_name)
               from marts.customers c left join segments.customer_segments s
                    on s.customer_id = c.customer_id and s.segment_family = ?""",
            [version, family],
        ).fetchall()[0]
        assert total == distinct == from_version == customers, family
        assert model_min == model_max == model, family
        if family == "behavioural":
            assert 3 <= segments <= 7
    # the same customers are left out of every family for want of consent
    not_profiled = con.execute(
        """select segment_family, count(*) from segments.customer_segments
           where fallback_reason = 'no_profiling_consent' group by 1 order by 1"""
    ).fetchall()
    assert len(not_profiled) == 3 and not_profiled[0][1] == not_profiled[1][1] == not_profiled[2][1] > 0
    assert (
        con.execute(
            "select count(*) from segments.customer_segments "
            "where segment_family = 'rfm' and (segment_key = 'rfm_not_profiled') <> (r_score is null)"
        ).fetchall()[0][0]
        == 0
    )
    pii = {"email", "phone", "first_name", "last_name", "street", "birth_date"}
    for table in ("customer_segments", "segment_profiles"):
        cols = {r[0] for r in con.execute(f"describe segments.{table}").fetchall()}
        assert not (cols & pii), table


def test_segment_profiles_are_kept_per_run_and_add_up(con):
    customers = con.execute("select count(*) from segments.customer_segments where segment_family = 'rfm'").fetchall()[
        0
    ][0]
    per_run = con.execute(
        """select dagster_run_id, segment_family, sum(customers), sum(share), count(*)
           from segments.segment_profiles group by all order by min(profiled_at), segment_family"""
    ).fetchall()
    assert len({r[0] for r in per_run}) == 2  # two runs, two profiles, none duplicated
    assert {r[1] for r in per_run} == set(SEGMENT_FAMILIES)
    last_run = per_run[-1][0]
    for run, family, n, share, _ in per_run:
        assert share == pytest.approx(1.0), (run, family)
        if run == last_run:
            assert n == customers, family
    current = con.execute(
        """select count(*) from (select distinct segment_family, segment_key from segments.customer_segments)"""
    ).fetchall()[0][0]
    assert (
        current
        == con.execute(
            "select count(*) from segments.segment_profiles where dagster_run_id = ?", [last_run]
        ).fetchall()[0][0]
    )


def test_built_features_match_the_registry_and_history_keeps_one_snapshot_per_date(con):
    """Every column of marts.customer_features is registered (warehouse/feature_registry.py); re-running for
    the same as_of_date replaces its snapshot in customer_features_history instead of adding one."""
    from warehouse.feature_registry import load_registry

    columns = [r[0] for r in con.execute("describe marts.customer_features").fetchall()]
    assert columns == list(load_registry())
    snapshots = con.execute(
        "select as_of_date, count(*), count(distinct customer_id) from marts.customer_features_history group by 1"
    ).fetchall()
    current = con.execute("select max(as_of_date), count(*) from marts.customer_features").fetchall()[0]
    assert [(d, n) for d, n, _ in snapshots] == [current]
    assert all(n == distinct for _, n, distinct in snapshots)


def test_training_snapshots_read_nothing_after_their_date(pipeline, tmp_path):
    """A copy of the warehouse loses everything after the first training snapshot date (orders, lines,
    tickets, visits, reviews); rebuilt there, that date's snapshot is identical to the one the run built."""
    from orchestration.dbt import run_dbt

    settings, *_ = pipeline
    copy = tmp_path / "truncated.duckdb"
    shutil.copyfile(settings.warehouse_path, copy)
    snapshots = "select * from marts.customer_feature_snapshots where as_of_date = ? order by customer_id"
    with duckdb.connect(str(copy)) as c:
        first = c.execute("select min(as_of_date) from marts.customer_feature_snapshots").fetchone()[0]
        original = c.execute(snapshots, [first]).df()
        removed = 0
        for table, column in (
            ("marts.orders", "order_date"),
            ("marts.order_lines", "order_date"),
            ("marts.support_tickets", "created_at"),
            ("events.events", "occurred_at"),
            ("feedback.reviews", "created_at"),
        ):
            removed += c.execute(f"delete from {table} where cast({column} as date) > ?", [first]).fetchone()[0]
    assert removed > 1_000 and len(original) > 1_000
    settings_json = json.dumps({"horizon_days": 90, "snapshot_dates": [str(first)]})
    proc = run_dbt(
        ["run", "--select", "customer_feature_snapshots", "--target-path", str(tmp_path / "target")],
        copy,
        extra_env={"SEGMENTS_PREDICTION": settings_json},
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    with duckdb.connect(str(copy), read_only=True) as c:
        rebuilt = c.execute(snapshots, [first]).df()
    assert len(rebuilt) == len(original)
    for column in original.columns:  # column by column, so a failure names the feature that leaked
        assert rebuilt[column].equals(original[column]), column


def test_backtest_command_reports_models_and_baselines(pipeline, capsys):
    settings, *_ = pipeline
    out = settings.home / "reports" / "backtest-test"
    assert main(["backtest", "--out", str(out)]) == 0
    report = json.loads((out / "backtest.json").read_text())
    assert len(report["dates"]) == 3 and all(d["train_rows"] > 0 for d in report["dates"])
    for key in ("auc", "recency_auc", "bg_nbd_auc", "brier", "ece", "auc_spread", "rank_stability"):
        assert 0 <= report["churn"][key] <= 1, key
    assert set(report["value"]) == {"last_period", "bg_nbd", "gradient_boosting"}
    assert {p.name for p in out.glob("*.png")} == {"churn_calibration.png", "churn_gain.png", "value_by_decile.png"}
    assert "Back-test: churn and value models" in capsys.readouterr().out
    assert main(["backtest", "--as-of", "2020-01-01"]) == 2  # one date: nothing to learn from
    assert "evaluate fewer dates than there are" in capsys.readouterr().err


def test_explain_leads_from_a_segment_row_to_models_data_dbt_and_landing_files(pipeline, capsys):
    """One command from a published customer to the model version, its training data digest, the dbt models
    and the landing files of the customer's records, without printing their personal data."""
    settings, *_ = pipeline
    # the command opens the warehouse itself: no other connection of this process may hold it meanwhile
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        customer_id, email = con.execute(
            """select c.customer_id, c.email from marts.customers as c
               join segments.customer_segments as s
                 on s.customer_id = c.customer_id and s.segment_family = 'behavioural'
               where c.email is not null and not s.is_fallback and c.source_record_count > 1
               order by c.customer_id limit 1"""
        ).fetchone()
        files = con.execute(
            """select r._source_file, r._source_row from identity.customer_source_records as i
               join crm.customers as r on i.source_system = 'crm' and r.crm_customer_id = i.source_record_id
               where i.customer_id = ?""",
            [customer_id],
        ).fetchall()
    assert main(["explain", customer_id, "--models"]) == 0
    out = capsys.readouterr().out
    version = client(settings.mlflow_tracking_uri).get_model_version_by_alias(SEGMENTATION_MODEL, CHAMPION)
    digest = client(settings.mlflow_tracking_uri).get_run(version.run_id).data.tags["training_data_digest"]
    assert f"model {SEGMENTATION_MODEL} v{version.version} @champion" in out
    assert f"training data digest {digest}" in out and f"/runs/{version.run_id}" in out
    for family in SEGMENT_FAMILIES:
        assert f"  {family} " in out, family
    assert "staging.stg_crm__customers" in out and "models/staging/crm/stg_crm__customers.sql" in out
    assert files and all(f"{file} row {row}" in out for file, row in files)
    assert email not in out
    assert main(["explain", "cus_0000000000000000"]) == 2
    assert main(["explain", "x'; drop table marts.customers; --"]) == 2


def test_second_run_loads_nothing_twice(pipeline, con):
    _, (first, second), *_ = pipeline
    skip = HISTORY_TABLES + CHANGE_TABLES
    assert {t: n for t, n in first.items() if t not in skip} == {t: n for t, n in second.items() if t not in skip}
    for table in HISTORY_TABLES:
        assert second[table] > first[table] > 0, table  # each run adds its profiles
    statuses = con.execute("select status, count(*) from audit.ingest_ledger group by 1").fetchall()
    assert dict(statuses).get("failed", 0) == 0


def test_unchanged_landing_skips_everything_after_the_ingest(pipeline, con):
    """A plain run with no new file after a complete run materializes nothing: no table changes,
    no scoring run, no new ledger row (a forced run rebuilds, see above)."""
    _, (_, second), _, after_plain_run, _ = pipeline
    assert after_plain_run == second
    runs = con.execute("select count(*) from ml.segment_scoring_runs").fetchall()[0][0]
    assert runs == 2


def test_mlflow_lineage_tags(pipeline):
    settings, *_ = pipeline
    registry = client(settings.mlflow_tracking_uri)
    version = registry.get_model_version_by_alias(SEGMENTATION_MODEL, CHAMPION)
    run = registry.get_run(version.run_id)
    for tag in ("dagster_run_id", "git_sha", "dbt_manifest_sha", "training_data_digest"):
        assert run.data.tags.get(tag), tag
    # the forced second run trained on the same data with the same definition: it reused version 1
    assert int(version.version) == 1
    assert version.tags["dagster_run_id"] == run.data.tags["dagster_run_id"]  # the run that registered it
    reusers = [k for k in version.tags if k.startswith(REUSED_BY_PREFIX)]
    assert len(reusers) == 1 and reusers[0] != REUSED_BY_PREFIX + version.tags["dagster_run_id"]
    # promoted: no version waits as challenger any more
    assert CHALLENGER not in registry.get_registered_model(SEGMENTATION_MODEL).aliases
    # links back to Dagster, a readable name and description, a classic-ML experiment
    dagster_run = run.data.tags["dagster_run_id"]
    assert run.data.tags["dagster_run_url"] == f"http://127.0.0.1:3000/runs/{dagster_run}"
    assert version.tags["dagster_run_url"] == run.data.tags["dagster_run_url"]
    assert run.info.run_name.startswith(f"{SEGMENTATION_MODEL} {version.tags['definition_version']} ")
    assert dagster_run[:8] in run.data.tags["mlflow.note.content"]
    assert run.data.tags["training_data_digest"] in run.data.tags["mlflow.note.content"]
    assert registry.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.info.start_time < run.info.end_time
    for name in ("churn_model", "value_model"):
        champion = registry.get_model_version_by_alias(name, CHAMPION)
        assert registry.get_run(champion.run_id).data.tags["dagster_run_url"].endswith(champion.tags["dagster_run_id"])


def test_cli_runs_are_runs_of_their_job_and_dbt_assets_carry_rows_and_columns(pipeline, con):
    """The Dagster UI lists a job's runs by the repository label tag; dbt assets report their shape."""
    import dagster as dg

    settings, *_ = pipeline
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        runs = instance.get_runs()
        customers = instance.get_latest_materialization_event(dg.AssetKey(["marts", "customers"]))
        segments = instance.get_latest_materialization_event(dg.AssetKey(["segments", "customer_segments"]))
    assert {r.job_name for r in runs} == {"build_segments_job"}
    assert {r.tags[".dagster/repository"] for r in runs} == {"__repository__@customer_segments"}
    assert {r.tags["segments/landing"] for r in runs} == {str(settings.landing_dir)}
    assert [r.tags["segments/forced"] for r in reversed(runs)][:3] == ["false", "true", "false"]
    columns = {}
    for event, table in ((customers, "marts.customers"), (segments, "segments.customer_segments")):
        meta = event.asset_materialization.metadata
        assert meta["dagster/row_count"].value == con.execute(f"select count(*) from {table}").fetchone()[0]
        columns[table] = {c.name: c for c in meta["dagster/column_schema"].value.columns}
        expected = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema || '.' || table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
        assert [(c.name, c.type) for c in columns[table].values()] == expected
    assert columns["marts.customers"]["customer_id"].description  # from the dbt docs


def test_churn_and_value_models_are_registered_promoted_and_score_every_customer(pipeline, con):
    settings, *_ = pipeline
    registry = client(settings.mlflow_tracking_uri)
    for name in ("churn_model", "value_model"):
        champion = registry.get_model_version_by_alias(name, CHAMPION)
        run = registry.get_run(champion.run_id)
        for tag in ("dagster_run_id", "git_sha", "dbt_manifest_sha", "training_data_digest", "definition_version"):
            assert run.data.tags.get(tag), (name, tag)
        # the forced second run trained on the same snapshots: it reused version 1 of each
        assert int(champion.version) == 1 and any(k.startswith(REUSED_BY_PREFIX) for k in champion.tags)
    customers, predicted, unexplained, bad = con.execute(
        """select count(*), count(p.churn_probability),
                  count(*) filter (where p.churn_probability is null and p.not_predicted_reason is null),
                  count(*) filter (where p.churn_probability not between 0 and 1 or p.expected_revenue_base < 0)
           from marts.customers as c left join ml.customer_predictions as p using (customer_id)"""
    ).fetchone()
    assert customers == con.execute("select count(distinct customer_id) from ml.customer_predictions").fetchone()[0]
    assert predicted > customers / 2 and unexplained == 0 and bad == 0


def test_predictive_segments_follow_the_predictions_and_profiles_carry_them(pipeline, con):
    """Predicted customers are in a rule segment of the definition, the others in the fallback of their reason;
    every family's profile carries churn rate and predicted value; BI gets the predictions in the serving copy."""
    settings, *_ = pipeline
    definition = load_prediction_definition()
    placed = con.execute(
        """select s.segment_key, s.is_fallback, s.fallback_reason, p.not_predicted_reason, s.definition_version
           from segments.customer_segments s join ml.customer_predictions p using (customer_id)
           where s.segment_family = 'predictive'"""
    ).fetchall()
    rule_keys = {segment.key for segment in definition.segments}
    assert {r[4] for r in placed} == {definition.version}
    for key, is_fallback, fallback_reason, not_predicted_reason, _ in placed:
        assert (key in rule_keys) == (not is_fallback) == (not_predicted_reason is None), key
        assert fallback_reason == not_predicted_reason
    assert len({r[0] for r in placed if not r[1]}) >= 3  # the rules reach several segments, not one catch-all
    # "Likely to churn - high value" is the first rule: every customer it names is at >= 0.6 churn risk
    first = definition.segments[0]
    assert first.key == "pred_likely_to_churn_high_value"
    low = con.execute(
        """select count(*) from segments.customer_segments s join ml.customer_predictions p using (customer_id)
           where s.segment_key = ? and p.churn_probability < 0.6""",
        [first.key],
    ).fetchone()[0]
    assert low == 0
    profiles = con.execute(
        """select segment_family, count(*) filter (where churn_rate between 0 and 1),
                  sum(predicted_customers), sum(total_expected_revenue_base)
           from segments.segment_profiles
           where dagster_run_id = (select dagster_run_id from segments.customer_segments limit 1)
           group by 1 order by 1"""
    ).fetchall()
    predicted, expected_revenue = con.execute(
        "select count(churn_probability), sum(expected_revenue_base) from ml.customer_predictions"
    ).fetchone()
    assert [r[0] for r in profiles] == sorted(SEGMENT_FAMILIES)
    for family, with_churn_rate, n, revenue in profiles:
        assert with_churn_rate >= 3 and n == predicted and revenue == pytest.approx(expected_revenue), family
    with duckdb.connect(str(settings.serving_dir / DUCKDB_FILE), read_only=True) as bi:
        assert bi.execute("select count(*) from segments.customer_predictions").fetchone()[0] == len(placed)


def test_quarantine_matches_planted_bad_rows(pipeline, con):
    """Every planted bad row is quarantined with its kind, and no good row is."""
    import pandas as pd

    _, _, home, *_ = pipeline
    truth = pd.read_parquet(home / "demo" / "truth" / "bad_rows.parquet")
    planted = set(zip(truth["file"], truth["record_number"], truth["kind"], strict=True))
    caught = set(con.execute("select source_file, source_row, reason_kind from audit.quarantine").fetchall())
    assert caught == planted


def test_identity_resolution_matches_the_planted_persons(pipeline, con):
    """Pairwise precision and recall against the generator's truth (the bench measures larger scales)."""
    from ml.identity.evaluate import evaluate

    _, _, home, *_ = pipeline
    con.execute("create temp table assigned as select record_id, customer_id from identity.customer_source_records")
    accuracy = evaluate(con, "assigned", home / "demo" / "truth", "staging.stg_events__events")
    assert accuracy.precision >= 0.99, accuracy.describe()
    assert accuracy.recall >= 0.97, accuracy.describe()
    assert (
        accuracy.records_evaluated == con.execute("select count(*) from identity.customer_source_records").fetchone()[0]
    )


def test_identity_is_stable_and_explained(con):
    runs = con.execute(
        "select is_applied, merges, splits, new_customers from identity.resolution_runs order by resolved_at"
    ).fetchall()
    assert len(runs) == 2 and all(r[0] for r in runs)
    assert runs[1][1:] == (0, 0, 0)  # the same data resolves to the same customers
    n = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    # every record in a multi-record customer is explained by at least one accepted link
    assert (
        n(
            """select count(*) from identity.customer_source_records
               where cluster_size > 1 and matched_on = 'unmatched'"""
        )
        == 0
    )
    # golden record provenance points at a record of the same customer
    assert (
        n(
            """select count(*) from marts.customers c
           where c.email is not null and not list_contains(c.source_record_ids, c.email_source)"""
        )
        == 0
    )
    assert n("select count(*) from marts.customers where first_name is not null and first_name_source is null") == 0


@pytest.fixture(scope="module")
def delivery_run(pipeline):
    """One more delivery, then one run (the pipeline's fourth): a new CRM landing file with re-typed records of
    40 existing people, and new orders (on the data's last day) for 30 customers in the RFM segment Hibernating;
    the run validates its GX suites on samples of GX_SAMPLE_CAP rows and trains under a definition whose gates
    cannot pass. The people must keep their customer ids, the movers leave Hibernating (history and transitions
    show it), the challenger is refused and the champion goes on scoring."""
    settings, _, home, *_ = pipeline
    landing = home / "demo" / "landing"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as c:
        before = dict(c.execute("select record_id, customer_id from identity.customer_source_records").fetchall())
        rows = c.execute(
            """select crm_customer_id,
                      'N' || lpad((row_number() over (order by crm_customer_id))::varchar, 7, '0') as new_id,
                      first_name, upper(last_name), upper(email), phone, street, city, postal_code, country,
                      strftime(birth_date, '%Y-%m-%d'), strftime(created_at, '%Y-%m-%dT%H:%M:%S')
               from crm.customers where email is not null and birth_date is not null
               order by crm_customer_id limit 40"""
        ).fetchall()
        as_of = c.execute("select max(as_of_date) from marts.customer_features").fetchall()[0][0]
        movers = c.execute(
            """select s.customer_id, min(r.source_record_id) as account
               from segments.customer_segments s
               join identity.customer_source_records r on r.customer_id = s.customer_id and r.source_system = 'erp'
               where s.segment_family = 'rfm' and s.segment_key = 'rfm_hibernating'
               group by 1 order by 1 limit 30"""
        ).fetchall()
        runs_before = c.execute("select count(*) from ml.segment_scoring_runs").fetchall()[0][0]
    assert len(movers) == 30
    header = "crm_customer_id,first_name,last_name,email,phone,street,city,postal_code,country,birth_date,created_at\n"
    lines = [",".join(f'"{v}"' if v is not None else "" for v in r[1:]) for r in rows]
    (landing / "crm" / "customers" / "part-0001.csv").write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    orders, order_lines = (
        ["order_id,erp_account_id,ordered_at,channel,currency,status"],
        ["order_line_id,order_id,product_id,category,quantity,unit_price,discount_amount"],
    )
    for i, (_, account) in enumerate(movers):
        for j in range(4):  # four ordinary orders each: recent and more frequent, not an outlier group
            oid = f"OX{i:03d}{j:02d}"
            orders.append(f"{oid},{account},{as_of}T1{j}:00:00,web,EUR,completed")
            order_lines.append(f"LX{i:03d}{j:02d},{oid},P0001,home,1,60.00,")
    (landing / "erp" / "orders" / "part-0001.csv").write_text("\n".join(orders) + "\n", encoding="utf-8")
    (landing / "erp" / "order_lines" / "part-0001.csv").write_text("\n".join(order_lines) + "\n", encoding="utf-8")
    # the run trains under a definition whose gates cannot pass (min silhouette 0.99): the challenger is
    # refused and scoring must go on with the current champion
    import yaml

    import ml.segmentation.definition as sd

    champion = str(version_by_alias(settings.mlflow_tracking_uri, SEGMENTATION_MODEL, CHAMPION).version)
    raw = yaml.safe_load(sd.BEHAVIOURAL.read_text())
    raw["promotion_gates"]["min_silhouette"] = 0.99
    raw["version"] = "99.0.0"
    strict = home / "strict_definition.yaml"
    strict.write_text(yaml.safe_dump(raw))
    lock = sd.read_lock(sd.VERSION_LOCK)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            sd,
            "read_lock",
            lambda *_: {**lock, "behavioural": {**lock["behavioural"], "99.0.0": sd.content_digest(raw)}},
        )
        mp.setenv("SEGMENTS_GX_SAMPLE_ROWS", str(GX_SAMPLE_CAP))  # this run only: GX validates samples above it
        assert run_pipeline(get_settings(), landing=landing, definition=strict).success
    evaluations = gx_check_evaluations(settings)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as c:
        after = dict(c.execute("select record_id, customer_id from identity.customer_source_records").fetchall())
        last = c.execute(
            "select merges, splits from identity.resolution_runs order by resolved_at desc limit 1"
        ).fetchone()
    third = (before, after, {f"crm:{r[1]}": f"crm:{r[0]}" for r in rows}, last, evaluations)
    return third, (settings, [m[0] for m in movers], runs_before, champion)


@pytest.fixture(scope="module")
def third_run(delivery_run):
    """What the delivery did to identity and the GX checks: the customer ids before and after, new record ->
    the record it re-describes, the last resolution's merges and splits, the run's GX check evaluations."""
    return delivery_run[0]


def test_new_records_for_existing_people_keep_every_customer_id(third_run):
    before, after, new_to_original, *_ = third_run
    changed = {r: (before[r], after[r]) for r in before if after.get(r) != before[r]}
    assert changed == {}
    # each new record joined the customer of the person it re-describes
    assert {n: after[n] for n in new_to_original} == {n: after[o] for n, o in new_to_original.items()}
    assert set(after) - set(before) == set(new_to_original)


def test_gx_checks_validate_a_sample_above_the_cap(pipeline, third_run):
    """The delivery run ran with SEGMENTS_GX_SAMPLE_ROWS = GX_SAMPLE_CAP: a table with more rows in scope is
    validated on a sample of exactly the cap, a smaller one in full. Sampling blocks nothing and changes
    no verdict: each sampled check passes (or warns) as it did when the forced run validated every row
    (compared with that run, not with "all passed": the orders suite's freshness expectation warns once
    the demo data is more than 45 days old, sampled or not)."""
    full, evaluations = pipeline[-1], third_run[-1]
    larger = {k: e for k, e in evaluations.items() if e["rows_in_scope"] > GX_SAMPLE_CAP}
    smaller = {k: e for k, e in evaluations.items() if e["rows_in_scope"] <= GX_SAMPLE_CAP}
    assert "marts.customers / customers_pass_expectation_suite" in larger, evaluations
    assert "crm.customers / new_rows_pass_expectation_suite" in smaller, evaluations
    for key, e in larger.items():
        assert e["sampled"] is True and e["rows_validated"] == GX_SAMPLE_CAP, (key, e)
    for key, e in smaller.items():
        assert e["sampled"] is False and e["rows_validated"] == e["rows_in_scope"], (key, e)
    assert [k for k, e in evaluations.items() if e["failed_error"]] == []
    assert set(larger) <= set(full) and not any(e["sampled"] for e in full.values())
    assert {k: e["passed"] for k, e in larger.items()} == {k: full[k]["passed"] for k in larger}


@pytest.fixture(scope="module")
def fourth_run(delivery_run):
    """What the delivery did to the segments: the settings, the movers, the scoring runs before, the champion."""
    return delivery_run[1]


def test_history_and_transitions_follow_changed_landing_data(fourth_run, tmp_path):
    settings, movers, runs_before, _ = fourth_run
    full_refresh = full_refresh_sql(
        "segment_transitions", settings.warehouse_path, tmp_path
    )  # before a connection holds the file
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as c:
        last_run = c.execute(
            "select dagster_run_id from ml.segment_scoring_runs order by scored_at desc limit 1"
        ).fetchall()[0][0]
        assert c.execute("select count(*) from ml.segment_scoring_runs").fetchall()[0][0] == runs_before + 1
        # each mover: its Hibernating period closed by the last run, a new one opened by it
        rows = c.execute(
            """select customer_id, from_segment_key, to_segment_key from segments.segment_transition_customers
               where dagster_run_id = ? and segment_family = 'rfm'""",
            [last_run],
        ).fetchall()
        moved = {cid: (f, t) for cid, f, t in rows}
        assert set(movers) <= set(moved)
        assert all(moved[m][0] == "rfm_hibernating" and moved[m][1] != "rfm_hibernating" for m in movers)
        # one open period per customer and family, and it is the current assignment
        mismatched = c.execute(
            """select count(*) from segments.customer_segments s
               full join (select * from segments.segment_membership_history where is_current) h
                 using (customer_id, segment_family)
               where h.segment_key is distinct from s.segment_key"""
        ).fetchall()[0][0]
        assert mismatched == 0
        # the matrix of the last run: its moves are the moved customers; it adds up to the customers
        matrix = c.execute(
            """select segment_family, sum(customers) filter (where is_move and from_segment_key <> '(new)'
                                                          and to_segment_key <> '(gone)'),
                      sum(customers) filter (where to_segment_key <> '(gone)')
               from segments.segment_transitions where dagster_run_id = ? group by 1 order by 1""",
            [last_run],
        ).fetchall()
        counts = dict(
            c.execute(
                "select segment_family, count(*) from segments.segment_transition_customers "
                "where dagster_run_id = ? group by 1",
                [last_run],
            ).fetchall()
        )
        customers = c.execute("select count(*) from marts.customers").fetchall()[0][0]
        for family, moves, after in matrix:
            assert moves == counts.get(family, 0)
            assert after == customers
        hibernating_out = c.execute(
            """select sum(customers) from segments.segment_transitions
               where dagster_run_id = ? and segment_family = 'rfm'
               and from_segment_key = 'rfm_hibernating' and to_segment_key <> 'rfm_hibernating'""",
            [last_run],
        ).fetchall()[0][0]
        assert hibernating_out >= len(movers)
        # the incremental matrix (each run added its own) equals a full rebuild, for every run after the first
        rows = lambda sql: sorted(c.execute(sql).fetchall(), key=str)  # noqa: E731
        incremental = rows("select * from segments.segment_transitions")
        assert incremental == rows(full_refresh)
        runs = [
            r[0] for r in c.execute("select dagster_run_id from ml.segment_scoring_runs order by scored_at").fetchall()
        ]
        assert {r[0] for r in incremental} == set(runs[1:]) and len(runs) >= 3


def test_outbox_is_consent_gated_and_never_repeats(fourth_run):
    settings = fourth_run[0]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as c:
        total, distinct = c.execute(
            "select count(*), count(distinct action_id) from segments.segment_actions"
        ).fetchall()[0]
        assert total == distinct > 0
        without_consent = c.execute(
            """select count(*) from segments.segment_actions a join marts.customers c using (customer_id)
               where (a.purpose = 'marketing_email' and not c.has_marketing_email_consent)
                  or (a.purpose = 'marketing_sms' and not c.has_marketing_sms_consent)"""
        ).fetchall()[0][0]
        assert without_consent == 0
        per_run = c.execute(
            "select created_run_id, count(*) from segments.segment_actions group by 1 order by min(created_at)"
        ).fetchall()
        runs = [
            r[0] for r in c.execute("select dagster_run_id from ml.segment_scoring_runs order by scored_at").fetchall()
        ]
        # the first run emits the backlog; the unchanged second run emits nothing; later runs only what changed
        assert per_run[0][0] == runs[0] and runs[1] not in dict(per_run)
        holdout = c.execute("select avg(is_holdout::int) from segments.segment_actions").fetchall()[0][0]
        assert 0.03 < holdout < 0.2


def test_docs_site_is_built_offline_with_the_exposures(fourth_run, capsys):
    settings = fourth_run[0]
    assert main(["docs"]) == 0
    page = settings.home / "docs" / "static_index.html"
    html = page.read_text(encoding="utf-8")
    assert "segment_report" in html and "customer_features_history" in html
    assert str(page) in capsys.readouterr().out


def test_a_refused_challenger_leaves_the_champion_scoring(fourth_run):
    """The delivery run trained under impossible gates: its challenger stays challenger, the check warns
    (the run succeeded), and every behavioural row still comes from the champion."""
    settings, _, _, champion = fourth_run
    challenger = version_by_alias(settings.mlflow_tracking_uri, SEGMENTATION_MODEL, CHALLENGER).version
    assert int(challenger) > int(champion)
    assert str(version_by_alias(settings.mlflow_tracking_uri, SEGMENTATION_MODEL, CHAMPION).version) == champion
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as c:
        versions = c.execute(
            "select distinct model_version from segments.customer_segments where segment_family = 'behavioural'"
        ).fetchall()
        last = c.execute(
            "select behavioural_model_version from ml.segment_scoring_runs order by scored_at desc limit 1"
        ).fetchall()
    assert versions == [(champion,)] and last == [(champion,)]
