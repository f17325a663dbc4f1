"""Segment write-back: one row per customer per family, idempotent re-runs, profiles per run and family."""

from __future__ import annotations

import json
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.segmentation.fallback import fallback_assignments
from ml.segmentation.rfm import MODEL_NAME, RFM_RULES_VERSION, rfm_assignments, rule_table
from ml.segmentation.store import (
    ASSIGNMENTS_TABLE,
    PROFILES_TABLE,
    AssignmentError,
    family_rows,
    write_assignments,
    write_definition,
    write_profiles,
)
from tests.ml.segmentation.fixtures import planted_features


def features() -> pd.DataFrame:
    """Planted buyers, a few customers without a completed order and a few without profiling consent."""
    df, _ = planted_features(n_per_group=40)
    df.loc[df.index % 11 == 0, ["frequency", "monetary_base", "aov_base"]] = [0, 0.0, np.nan]
    df.loc[df.index % 11 == 0, "recency_days"] = np.nan
    df["has_profiling_consent"] = df.index % 9 != 0
    df["profiling_basis"] = np.where(df["has_profiling_consent"], "consent", "none")
    return df


def behavioural(df: pd.DataFrame) -> pd.DataFrame:
    """Behavioural rows as the scoring asset builds them: model segments for the consenting, fallbacks else."""
    consent = df["has_profiling_consent"].to_numpy()
    placed = pd.DataFrame(
        {
            "customer_id": df.loc[consent, "customer_id"],
            "segment_key": [f"behavioural_s{i % 4}" for i in range(consent.sum())],
            "segment_name": [f"Segment {i % 4}" for i in range(consent.sum())],
            "reason": "recency_days <= 30",
            "is_fallback": False,
            "fallback_reason": None,
        }
    )
    return pd.concat(
        [
            placed,
            fallback_assignments(df.loc[~consent, "customer_id"], ["no_profiling_consent"] * int((~consent).sum())),
        ],
        ignore_index=True,
    )


def families(df: pd.DataFrame) -> list[pd.DataFrame]:
    rfm = rfm_assignments(df, ~df["has_profiling_consent"].to_numpy())
    return [
        family_rows(
            behavioural(df),
            family="behavioural",
            model_name="customer_segmentation",
            model_version="3",
            definition_version="2.0.0",
            scores=rfm,
        ),
        family_rows(
            rfm,
            family="rfm",
            model_name=MODEL_NAME,
            model_version=RFM_RULES_VERSION,
            definition_version=RFM_RULES_VERSION,
        ),
    ]


@pytest.fixture
def con():
    c = duckdb.connect()
    df = features()
    c.execute("create schema marts")
    c.register("_f", df)
    c.execute("create table marts.customer_features as select * from _f")
    c.unregister("_f")
    yield c, df
    c.close()


def one(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()[0][0]


def test_every_customer_has_exactly_one_row_per_family(con):
    c, df = con
    n = write_assignments(c, families(df), run_id="run-1")
    assert n == 2 * len(df)
    per_customer = c.execute(
        f"select segment_family, count(*), count(distinct customer_id) from {ASSIGNMENTS_TABLE} group by 1 order by 1"
    ).fetchall()
    assert per_customer == [("behavioural", len(df), len(df)), ("rfm", len(df), len(df))]
    rfm = c.execute(
        f"select distinct model_name, model_version, definition_version from {ASSIGNMENTS_TABLE} "
        "where segment_family = 'rfm'"
    ).fetchall()
    assert rfm == [(MODEL_NAME, RFM_RULES_VERSION, RFM_RULES_VERSION)]
    # scores are on every row of a customer, null for those not profiled
    assert (
        one(
            c,
            f"""select count(*) from {ASSIGNMENTS_TABLE} b join {ASSIGNMENTS_TABLE} r using (customer_id)
                       where b.segment_family = 'behavioural' and r.segment_family = 'rfm'
                         and b.r_score is distinct from r.r_score""",
        )
        == 0
    )
    assert (
        one(
            c,
            f"""select count(*) from {ASSIGNMENTS_TABLE} where segment_family = 'rfm'
                       and (segment_key = 'rfm_not_profiled') <> (r_score is null)""",
        )
        == 0
    )
    assert (
        one(c, f"select count(*) from {ASSIGNMENTS_TABLE} where segment_key = 'rfm_not_profiled' and not is_fallback")
        == 0
    )
    assert one(c, f"select count(distinct dagster_run_id) from {ASSIGNMENTS_TABLE}") == 1


def test_assignments_arrive_in_chunks_as_a_generator(con):
    """Several frames per family, from a generator (how scoring streams a million customers): the
    same table as one frame per family, and a duplicate across two chunks is still refused."""
    c, df = con
    whole = families(df)
    write_assignments(c, whole, run_id="run-1")
    expected = c.execute(f"select * exclude (assigned_at) from {ASSIGNMENTS_TABLE} order by all").fetchall()
    chunked = (family.iloc[i : i + 50] for family in whole for i in range(0, len(family), 50))
    assert write_assignments(c, chunked, run_id="run-1") == 2 * len(df)
    assert c.execute(f"select * exclude (assigned_at) from {ASSIGNMENTS_TABLE} order by all").fetchall() == expected
    repeated = [whole[0].iloc[:10], whole[0].iloc[5:], whole[1]]
    with pytest.raises(AssignmentError):
        write_assignments(c, iter(repeated), run_id="run-2")
    assert one(c, f"select count(distinct dagster_run_id) from {ASSIGNMENTS_TABLE}") == 1


def test_rewriting_assignments_replaces_them(con):
    c, df = con
    write_assignments(c, families(df), run_id="run-1")
    write_assignments(c, families(df), run_id="run-2")
    assert one(c, f"select count(*) from {ASSIGNMENTS_TABLE}") == 2 * len(df)
    assert (
        one(
            c,
            f"select count(*) from (select 1 from {ASSIGNMENTS_TABLE} "
            "group by customer_id, segment_family having count(*) > 1)",
        )
        == 0
    )
    assert c.execute(f"select distinct dagster_run_id from {ASSIGNMENTS_TABLE}").fetchall() == [("run-2",)]


@pytest.mark.parametrize("defect", ["duplicate", "missing"])
def test_rows_breaking_the_family_contract_are_refused_and_leave_the_table(con, defect):
    c, df = con
    write_assignments(c, families(df), run_id="run-1")
    behavioural_rows, rfm_rows = families(df)
    rfm_rows = pd.concat([rfm_rows, rfm_rows.iloc[:1]]) if defect == "duplicate" else rfm_rows.iloc[1:]
    with pytest.raises(AssignmentError):
        write_assignments(c, [behavioural_rows, rfm_rows], run_id="run-2")
    assert c.execute(f"select distinct dagster_run_id from {ASSIGNMENTS_TABLE}").fetchall() == [("run-1",)]


def test_profiles_shares_sum_to_one_and_customers_to_the_customer_count(con):
    c, df = con
    write_assignments(c, families(df), run_id="run-1")
    rows = write_profiles(c, "run-1")
    assert rows == one(c, f"select count(distinct segment_family || segment_key) from {ASSIGNMENTS_TABLE}")
    sums = c.execute(
        f"select segment_family, sum(share), sum(customers) from {PROFILES_TABLE} "
        "where dagster_run_id = 'run-1' group by 1 order by 1"
    ).fetchall()
    assert [f for f, _, _ in sums] == ["behavioural", "rfm"]
    for _, share, customers in sums:
        assert share == pytest.approx(1.0) and customers == len(df)
    # the profile is the average customer of the segment, from the features
    champions = c.execute(
        f"""select customers, avg_frequency, total_revenue_base, avg_recency_days from {PROFILES_TABLE}
            where segment_key = 'rfm_champions'"""
    ).fetchall()[0]
    expected = c.execute(
        f"""select count(*), avg(frequency), sum(monetary_base), avg(recency_days) from marts.customer_features
            join {ASSIGNMENTS_TABLE} a using (customer_id) where a.segment_key = 'rfm_champions'"""
    ).fetchall()[0]
    assert champions == pytest.approx(expected)
    no_purchase = c.execute(
        f"select avg_recency_days, avg_aov_base, avg_frequency from {PROFILES_TABLE} "
        "where segment_key = 'rfm_no_purchase_yet'"
    ).fetchall()[0]
    assert no_purchase == (None, None, 0.0)


def test_rewriting_the_profiles_of_a_run_does_not_duplicate_and_other_runs_are_kept(con):
    c, df = con
    write_assignments(c, families(df), run_id="run-1")
    first = write_profiles(c, "run-1")
    assert write_profiles(c, "run-1") == first
    assert one(c, f"select count(*) from {PROFILES_TABLE}") == first
    write_assignments(c, families(df), run_id="run-2")
    write_profiles(c, "run-2")
    assert c.execute(f"select dagster_run_id, count(*) from {PROFILES_TABLE} group by 1 order by 1").fetchall() == [
        ("run-1", first),
        ("run-2", first),
    ]


def test_the_rfm_rule_table_is_recorded_as_a_definition_without_hiding_the_behavioural_one(con):
    c, _ = con
    behavioural_definition = SimpleNamespace(  # the fields write_definition reads
        name="behavioural",
        version="2.0.0",
        family="behavioural",
        description="",
        content_sha256="x",
        raw={"name": "behavioural", "version": "2.0.0"},
    )
    write_definition(c, behavioural_definition, "run-1")
    write_definition(c, rule_table(), "run-1")
    write_definition(c, rule_table(), "run-1")  # the same version again: one row
    stored = c.execute(
        "select definition_name, definition_version, family, content from ml.segment_definitions order by 1"
    ).fetchall()
    assert [(n, v, f) for n, v, f, _ in stored] == [
        ("behavioural", "2.0.0", "behavioural"),
        ("rfm", RFM_RULES_VERSION, "rfm"),
    ]
    assert json.loads(stored[1][3])["rules"][0]["key"] == "rfm_champions"


def test_the_run_summary_lists_sizes_per_family(con):
    from warehouse.summary import segment_sizes

    c, df = con
    write_assignments(c, families(df), run_id="run-1")
    c.execute("create schema segments")
    c.execute(f"create view segments.customer_segments as select * from {ASSIGNMENTS_TABLE}")
    sizes = segment_sizes(c)
    assert {s[0] for s in sizes} == {"behavioural", "rfm"}
    for family in ("behavioural", "rfm"):
        rows = [s for s in sizes if s[0] == family]
        assert sum(s[4] for s in rows) == len(df) and sum(s[5] for s in rows) == pytest.approx(1.0)
        assert [s[4] for s in rows] == sorted((s[4] for s in rows), reverse=True)


def _current(con) -> dict[tuple[str, str], str]:
    from ml.segmentation.store import HISTORY_TABLE

    rows = con.execute(
        f"select customer_id, segment_family, segment_key from {HISTORY_TABLE} where is_current"
    ).fetchall()
    return {(c, f): k for c, f, k in rows}


def test_membership_history_is_scd2_and_idempotent(con):
    """First run opens a period per customer and family; an unchanged run (also a retrain: new model
    version, same segments) opens nothing; a changed segment closes one period and opens the next at
    the same instant; a customer no longer assigned is closed; re-running a run changes nothing."""
    from ml.segmentation.store import HISTORY_TABLE, update_membership_history

    con, df = con
    write_assignments(con, families(df), run_id="r1")
    assert update_membership_history(con, "r1") == {"opened": 2 * len(df), "closed": 0}
    assert update_membership_history(con, "r1") == {"opened": 0, "closed": 0}

    retrained = families(df)
    retrained[0]["model_version"] = "4"
    write_assignments(con, retrained, run_id="r2")
    assert update_membership_history(con, "r2") == {"opened": 0, "closed": 0}

    moved = families(df)
    mover = moved[0]["customer_id"].iloc[0]
    moved[0].loc[0, ["segment_key", "segment_name"]] = ["behavioural_elsewhere", "Elsewhere"]
    gone = df["customer_id"].iloc[-1]
    moved = [f[f["customer_id"] != gone] for f in moved]
    write_assignments(con, moved, run_id="r3")
    assert update_membership_history(con, "r3") == {"opened": 1, "closed": 1 + 2}
    assert _current(con)[(mover, "behavioural")] == "behavioural_elsewhere"
    assert (gone, "rfm") not in _current(con)
    periods = con.execute(
        f"""select segment_key, valid_from, valid_to, opened_run_id, closed_run_id from {HISTORY_TABLE}
            where customer_id = ? and segment_family = 'behavioural' order by valid_from""",
        [mover],
    ).fetchall()
    assert [(p[0], p[3], p[4]) for p in periods] == [
        ("behavioural_s0", "r1", "r3"),
        ("behavioural_elsewhere", "r3", None),
    ]
    assert periods[0][2] == periods[1][1]  # closed at the instant the next period opens
    assert update_membership_history(con, "r3") == {"opened": 0, "closed": 0}
    runs = con.execute(
        "select dagster_run_id, behavioural_model_version from ml.segment_scoring_runs order by scored_at"
    ).fetchall()
    assert runs == [("r1", "3"), ("r2", "4"), ("r3", "3")]
