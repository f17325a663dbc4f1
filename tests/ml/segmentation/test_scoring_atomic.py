"""A scoring run writes everything or nothing, and a repeat (same run, or a recovery run on unchanged data)
duplicates nothing: `score_customers` on a real warehouse file with a real `@champion` in a temp MLflow
registry.

The warehouse is compared table by table (row count and a digest of every row) across the whole `ml`
schema, so a write that escapes the run's transaction, or a row a repeat adds, shows up wherever it lands.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ml.segmentation.scoring as scoring
from ml.model_registry import ensure_tracking_db
from ml.segmentation.definition import BEHAVIOURAL, load_definition
from ml.segmentation.model import log_segmentation_model
from ml.segmentation.promotion import promote
from ml.segmentation.training import train_segmentation
from tests.ml.segmentation.fixtures import planted_features
from warehouse.connections import connect


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> str:
    """A tracking URI whose registry has a `customer_segmentation@champion` trained on planted groups."""
    tmp = tmp_path_factory.mktemp("mlflow")
    ensure_tracking_db(tmp / "mlflow.db")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    df, _ = planted_features(200)
    trained = train_segmentation(df, load_definition(), k_range=range(3, 6), sample_size=1000)
    ref = log_segmentation_model(
        trained,
        tracking_uri=uri,
        artifacts_dir=tmp / "artifacts",
        training_df_digest_source=df,
        tags={"dagster_run_id": "train", "git_sha": "abc", "dbt_manifest_sha": "def"},
        definition_yaml=BEHAVIOURAL.read_text(),
    )
    assert promote(uri, ref.version).passed
    return uri


def customer_features(slipped: bool = False) -> pd.DataFrame:
    """Planted customers (some without profiling consent, some without an order); `slipped`: the next
    period, in which a third of the planted champions stopped buying (RFM moves, playbooks fire)."""
    df, truth = planted_features(200)
    df["as_of_date"] = pd.Timestamp("2025-01-31").date()
    df["has_profiling_consent"] = df.index % 9 != 0
    df["profiling_basis"] = np.where(df["has_profiling_consent"], "consent", "none")
    df.loc[df.index % 13 == 0, ["frequency", "monetary_base", "aov_base"]] = [0, 0.0, np.nan]
    if slipped:
        gone = (truth == 0) & (df.index % 3 == 0)
        df.loc[gone, ["recency_days", "last_activity_days"]] = 420.0
    return df


def load_marts(con, features: pd.DataFrame) -> None:
    con.execute("create schema if not exists marts")
    con.register("_features", features)
    con.execute("create or replace table marts.customer_features as select * from _features")
    con.unregister("_features")
    con.execute(
        """create or replace table marts.customers as
           select customer_id,
                  case when hash(customer_id) % 5 <> 0 then 'consent' else 'none' end as marketing_email_basis,
                  case when hash(customer_id) % 2 = 0 then 'consent' else 'objected' end as marketing_sms_basis
           from marts.customer_features"""
    )


def snapshot(con) -> dict[str, tuple[int, str]]:
    """Every table of the `ml` schema: (rows, md5 of all rows in a fixed order)."""
    tables = [
        t
        for (t,) in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'ml' and not temporary order by 1"
        ).fetchall()
    ]
    return {
        t: tuple(
            con.execute(
                f"""select count(*), md5(coalesce(string_agg(r::varchar, chr(10) order by r::varchar), ''))
                    from (select * from ml.{t}) as r"""
            ).fetchall()[0]
        )
        for t in tables
    }


def temp_tables(con) -> list[str]:
    return [t for (t,) in con.execute("select table_name from duckdb_tables() where temporary").fetchall()]


def counts(con, *tables: str) -> dict[str, int]:
    return {t: con.execute(f"select count(*) from ml.{t}").fetchall()[0][0] for t in tables}


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with connect(path) as con:
        load_marts(con, customer_features())
    return path


class Injected(RuntimeError):
    """The failure a test injects into a scoring run."""


def fail_after(real):
    """`real`, which writes, then a failure (as if the process died right after it)."""

    def wrapper(*args, **kwargs):
        real(*args, **kwargs)
        raise Injected(real.__name__)

    return wrapper


def fail_while_placing(*args, **kwargs):
    raise Injected("the model failed on a chunk")


@pytest.mark.parametrize(
    ("target", "replacement"),
    [
        ("assign_segments", lambda real: fail_while_placing),  # before anything is written
        ("insert_profiles", fail_after),  # after the definition record, the assignments and the profiles
        ("fold_membership_history", fail_after),  # ... the history and the run record
        ("emit_playbooks", fail_after),  # ... the actions and alerts: everything but the commit
    ],
)
def test_a_run_failing_anywhere_leaves_the_warehouse_as_it_was(warehouse, champion, monkeypatch, target, replacement):
    with connect(warehouse) as con:
        scoring.score_customers(con, champion, "run-1")
        load_marts(con, customer_features(slipped=True))  # the next period: the run would move customers
        before = snapshot(con)
        assert {"customer_segment_assignments", "segment_scoring_runs", "segment_actions"} <= set(before)
        with monkeypatch.context() as patched:
            patched.setattr(scoring, target, replacement(getattr(scoring, target)))
            with pytest.raises(Injected):
                scoring.score_customers(con, champion, "run-2")
        assert snapshot(con) == before
        assert temp_tables(con) == []  # the staging and candidates tables are gone too
        # the same run, retried, writes what it would have written the first time
        result = scoring.score_customers(con, champion, "run-2")
        assert result.history["closed"] > 0 and result.playbook_results["slipping_loyal_email"]["new"] > 0
        assert snapshot(con) != before
    with connect(warehouse) as con:  # and what it wrote is durable (committed, not left open)
        runs = con.execute("select dagster_run_id from ml.segment_scoring_runs order by scored_at").fetchall()
        assert runs == [("run-1",), ("run-2",)]


def test_the_first_run_failing_creates_no_table(warehouse, champion, monkeypatch):
    with connect(warehouse) as con:
        monkeypatch.setattr(scoring, "emit_playbooks", fail_after(scoring.emit_playbooks))
        with pytest.raises(Injected):
            scoring.score_customers(con, champion, "run-1")
        assert snapshot(con) == {}


def test_repeats_duplicate_nothing(warehouse, champion):
    """Run 2 moves customers. Run 2 again (a retried step) changes nothing but the time of the assignments;
    run 3 (a recovery run: new id, unchanged data, same champion) adds its run record and its profiles,
    replaces the assignments, and opens no period, makes no transition, emits no action or alert."""
    state = (
        "segment_membership_history",
        "segment_actions",
        "segment_alerts",
        "segment_definitions",
        "customer_segment_assignments",
    )
    with connect(warehouse) as con:
        scoring.score_customers(con, champion, "run-1")
        load_marts(con, customer_features(slipped=True))
        moved = scoring.score_customers(con, champion, "run-2")
        assert moved.history["opened"] > 0 and moved.playbook_results["valuable_customer_slipping"]["new"] > 0
        after_run_2 = snapshot(con)
        assert counts(con, "segment_actions")["segment_actions"] > 0

        again = scoring.score_customers(con, champion, "run-2")
        assert again.history == {"opened": 0, "closed": 0}
        assert all(r.get("new", 0) == 0 for r in again.playbook_results.values())
        repeated = snapshot(con)
        # everything identical, row for row, except the assignments' and profiles' timestamps
        changed = {t for t in after_run_2 if repeated[t] != after_run_2[t]}
        assert changed <= {"customer_segment_assignments", "segment_profiles"}
        assert {t: n for t, (n, _) in repeated.items()} == {t: n for t, (n, _) in after_run_2.items()}

        recovery = scoring.score_customers(con, champion, "run-3")
        assert recovery.history == {"opened": 0, "closed": 0}
        assert all(r.get("new", 0) == 0 for r in recovery.playbook_results.values())
        recovered = snapshot(con)
        for table in state[:3]:  # state keyed by period: row for row as run 2 left it
            assert recovered[table] == after_run_2[table], table
        assert {t: recovered[t][0] for t in state} == {t: after_run_2[t][0] for t in state}
        # the transitions of the recovery run (periods it opened after one it closed): none
        moves = con.execute(
            """select count(*) from ml.segment_membership_history e join ml.segment_membership_history l
                   on l.customer_id = e.customer_id and l.segment_family = e.segment_family
                  and l.closed_run_id = e.opened_run_id
               where e.opened_run_id = 'run-3'"""
        ).fetchall()[0][0]
        assert moves == 0
        # one record per run; the profiles are a log per run: run 3's are run 2's figures again
        runs = con.execute("select dagster_run_id from ml.segment_scoring_runs order by scored_at").fetchall()
        assert runs == [("run-1",), ("run-2",), ("run-3",)]
        profiles = {
            run: con.execute(
                """select segment_family, segment_key, customers, share from ml.segment_profiles
                   where dagster_run_id = ? order by all""",
                [run],
            ).fetchall()
            for run in ("run-2", "run-3")
        }
        assert profiles["run-3"] == profiles["run-2"]
        assert recovered["segment_profiles"][0] == after_run_2["segment_profiles"][0] + len(profiles["run-3"])
        # the current profile is the one of the assignments' run: it adds up to the customers, once
        current = dict(
            con.execute(
                """select p.segment_family, sum(p.customers) from ml.segment_profiles p
                   where p.dagster_run_id = (select any_value(dagster_run_id) from ml.customer_segment_assignments)
                   group by 1"""
            ).fetchall()
        )
        assert current == {"behavioural": 1000, "rfm": 1000}
        assert con.execute("select distinct dagster_run_id from ml.customer_segment_assignments").fetchall() == [
            ("run-3",)
        ]
