"""Write-back of segment assignments and profiles into the `ml` schema (dbt sources).

`ml.customer_segment_assignments` holds one row per customer per segment family (behavioural, rfm, ...);
within a family the segments are mutually exclusive, so (customer_id, segment_family) is unique. The
table is replaced as a whole in one statement: re-running scoring never duplicates rows, and the
history of assignments is kept by the segment history models, not here.

`ml.segment_profiles` is history: one row per run, family and segment (size, share and the average
customer of the segment), appended per run; a re-run of the same Dagster run replaces its own rows.
The profile of the current assignments is the one of their run (`dagster_run_id` of the assignments).

A scoring run commits all of its writes in one transaction (`ml/segmentation/scoring.py`): the assignments
are first staged in a temp table (`stage_assignments`, chunk by chunk, before the transaction), then
`publish_assignments`, `insert_profiles` and `fold_membership_history` write in the caller's transaction.
`write_assignments`, `write_profiles` and `update_membership_history` are the same writes in a transaction
of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pandas as pd

from warehouse.connections import transaction
from warehouse.tables import ensure_tables, replace_table

ASSIGNMENTS_TABLE = "ml.customer_segment_assignments"
DEFINITIONS_TABLE = "ml.segment_definitions"
PROFILES_TABLE = "ml.segment_profiles"
HISTORY_TABLE = "ml.segment_membership_history"
SCORING_RUNS_TABLE = "ml.segment_scoring_runs"
FEATURES_TABLE = "marts.customer_features"
# Churn risk and predicted value per customer (ml/prediction/scoring.py writes it): profiles summarise it
# per segment, the predictive family places customers by it.
PREDICTIONS_TABLE = "ml.customer_predictions"
# The segment families a pipeline run writes; every customer has exactly one row in each.
SEGMENT_FAMILIES = ("behavioural", "rfm", "predictive")

# The columns a family's rows bring to `write_assignments` (it adds assigned_at and dagster_run_id).
ASSIGNMENT_COLUMNS = (
    "customer_id",
    "segment_family",
    "segment_key",
    "segment_name",
    "r_score",
    "f_score",
    "m_score",
    "model_name",
    "model_version",
    "definition_version",
    "reason",
    "is_fallback",
    "fallback_reason",
)
SCORE_COLUMNS = ("r_score", "f_score", "m_score")


class AssignmentError(ValueError):
    """Assignment rows that break the contract: one row per customer per family, every family complete."""


def family_rows(
    segments: pd.DataFrame,
    *,
    family: str,
    model_name: str,
    model_version: str,
    definition_version: str,
    scores: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The rows of one family in `ASSIGNMENT_COLUMNS` order.

    `segments`: customer_id, segment_key, segment_name, reason, is_fallback, fallback_reason (and the
    r/f/m scores, unless `scores` is given). `scores`: customer_id, r/f/m_score, joined onto every row so
    BI can filter any family by RFM scores (a customer missing from `scores` gets null scores).
    """
    rows = segments.copy()
    if scores is not None:
        rows = rows.drop(columns=[c for c in SCORE_COLUMNS if c in rows.columns]).merge(
            scores[["customer_id", *SCORE_COLUMNS]], on="customer_id", how="left"
        )
    for col in SCORE_COLUMNS:
        if col not in rows.columns:
            rows[col] = None
    rows = rows.assign(
        segment_family=family, model_name=model_name, model_version=model_version, definition_version=definition_version
    )
    return rows[list(ASSIGNMENT_COLUMNS)]


STAGE_TABLE = "_assignments_stage"  # temp table: the assignments of a run before they are published


def stage_assignments(con: duckdb.DuckDBPyConnection, families: Iterable[pd.DataFrame]) -> int:
    """Copy the rows of every family (see `family_rows`) into the temp table `STAGE_TABLE`, check them;
    returns the row count. Writes nothing of the warehouse: `publish_assignments` does, in the caller's
    transaction, and `drop_stage` releases the table.

    `families` may be any iterable of frames, several per family (e.g. a generator scoring customers in
    chunks): each frame is copied into the staging table as it arrives and released, so Python never
    holds every assignment at once. Rows keep the order they arrive in (a family's rows together).
    Refuses (AssignmentError, staging table dropped) rows that would break the contract: a customer twice
    in a family, or a customer present in one family and missing from another.
    """
    con.execute(
        f"""create or replace temp table {STAGE_TABLE} (
               customer_id varchar, segment_family varchar, segment_key varchar, segment_name varchar,
               r_score integer, f_score integer, m_score integer,
               model_name varchar, model_version varchar, definition_version varchar,
               reason varchar, is_fallback boolean, fallback_reason varchar)"""
    )
    try:
        for frame in families:
            con.register("_assignments_chunk", frame[list(ASSIGNMENT_COLUMNS)])
            try:
                con.execute(f"insert into {STAGE_TABLE} select {', '.join(ASSIGNMENT_COLUMNS)} from _assignments_chunk")
            finally:
                con.unregister("_assignments_chunk")
        duplicated, incomplete, rows = con.execute(
            f"""with per_family as (
                   select segment_family, customer_id, count(*) as n from {STAGE_TABLE} group by all
               ),
               customers as (select count(distinct customer_id) as n from {STAGE_TABLE})
               select (select count(*) from per_family where n > 1),
                      (select count(*) from (select segment_family, count(*) as n from per_family group by all)
                       where n <> (select n from customers)),
                      (select count(*) from {STAGE_TABLE})"""
        ).fetchall()[0]
        if duplicated or incomplete:
            raise AssignmentError(
                f"{duplicated} customer(s) with several rows in a family, {incomplete} family(ies) missing customers"
            )
    except BaseException:
        drop_stage(con)
        raise
    return int(rows)


def publish_assignments(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """Replace `ml.customer_segment_assignments` with the staged rows of `run_id` (in the caller's
    transaction: readers never see the table empty); returns the row count."""
    replace_table(con, ASSIGNMENTS_TABLE)
    con.execute(
        f"""insert into {ASSIGNMENTS_TABLE}
            select customer_id, segment_family, segment_key, segment_name, r_score, f_score, m_score,
                   model_name, model_version, definition_version,
                   current_timestamp::timestamp as assigned_at,
                   reason, is_fallback, fallback_reason,
                   ?::varchar as dagster_run_id
            from {STAGE_TABLE}""",
        [run_id],
    )
    return con.execute(f"select count(*) from {ASSIGNMENTS_TABLE}").fetchall()[0][0]


def drop_stage(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"drop table if exists {STAGE_TABLE}")


def write_assignments(con: duckdb.DuckDBPyConnection, families: Iterable[pd.DataFrame], *, run_id: str) -> int:
    """Replace the assignments with the rows of every family in a transaction of its own (`stage_assignments`,
    then `publish_assignments`); returns the row count. Rows breaking the contract: AssignmentError, table
    untouched."""
    stage_assignments(con, families)
    try:
        with transaction(con):
            return publish_assignments(con, run_id)
    finally:
        drop_stage(con)


def write_profiles(con: duckdb.DuckDBPyConnection, run_id: str, *, features_table: str = FEATURES_TABLE) -> int:
    """`insert_profiles` in a transaction of its own."""
    with transaction(con):
        return insert_profiles(con, run_id, features_table=features_table)


def insert_profiles(con: duckdb.DuckDBPyConnection, run_id: str, *, features_table: str = FEATURES_TABLE) -> int:
    """Append the profile of every family and segment of the current assignments of `run_id` to
    `ml.segment_profiles` (after deleting that run's earlier rows: a re-run does not duplicate), in the
    caller's transaction; returns the rows written. Computed in SQL over the assignments joined with the
    customer features and the current predictions; averages skip customers without a value (e.g. recency
    of a customer who never bought, churn risk of a customer not predicted).

    From the predictions: `predicted_customers`, `churn_rate` (mean churn probability over the horizon: the
    share of the segment expected to place no order), `avg_` / `total_expected_revenue_base` and
    `value_growth` (predicted revenue over the same customers' past revenue per horizon, minus 1)."""
    ensure_tables(con, PROFILES_TABLE, PREDICTIONS_TABLE)
    con.execute(f"delete from {PROFILES_TABLE} where dagster_run_id = ?", [run_id])
    con.execute(
        f"""insert into {PROFILES_TABLE} by name
            with per_segment as (
                select a.segment_family, a.segment_key,
                       any_value(a.segment_name) as segment_name,
                       count(*) as customers,
                       avg(f.aov_base) as avg_aov_base,
                       avg(f.frequency) as avg_frequency,
                       sum(f.monetary_base) as total_revenue_base,
                       avg(f.monetary_base) as avg_revenue_base,
                       avg(f.tenure_days) as avg_tenure_days,
                       avg(f.recency_days) as avg_recency_days,
                       avg(f.avg_csat) as avg_csat,
                       any_value(a.model_version) as model_version,
                       any_value(a.definition_version) as definition_version,
                       count(p.churn_probability) as predicted_customers,
                       avg(p.churn_probability) as churn_rate,
                       avg(p.expected_revenue_base) as avg_expected_revenue_base,
                       sum(p.expected_revenue_base) as total_expected_revenue_base,
                       sum(f.monetary_base * p.horizon_days / greatest(f.days_since_first_order, p.horizon_days))
                           filter (where p.expected_revenue_base is not null) as past_revenue_per_horizon
                from {ASSIGNMENTS_TABLE} as a
                left join {features_table} as f using (customer_id)
                left join {PREDICTIONS_TABLE} as p
                    on p.customer_id = a.customer_id and p.expected_revenue_base is not null
                where a.dagster_run_id = ?
                group by a.segment_family, a.segment_key
            )
            select ?::varchar as dagster_run_id, current_timestamp::timestamp as profiled_at,
                   segment_family, segment_key, segment_name, customers,
                   customers / sum(customers) over (partition by segment_family) as share,
                   avg_aov_base, avg_frequency, total_revenue_base, avg_revenue_base, avg_tenure_days,
                   avg_recency_days, avg_csat, model_version, definition_version,
                   predicted_customers, churn_rate, avg_expected_revenue_base, total_expected_revenue_base,
                   total_expected_revenue_base / nullif(past_revenue_per_horizon, 0) - 1 as value_growth
            from per_segment
            order by segment_family, customers desc""",
        [run_id, run_id],
    )
    return con.execute(f"select count(*) from {PROFILES_TABLE} where dagster_run_id = ?", [run_id]).fetchall()[0][0]


def update_membership_history(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    """Fold the current assignments into the SCD2 history `ml.segment_membership_history` and record
    the scoring run in `ml.segment_scoring_runs`; returns rows opened and closed.

    A membership is (customer, family) -> (segment_key, definition_version): a row stays open while the
    customer keeps its segment under the same definition version, also across retrains (which model
    version scored each run is in the runs table; `model_version` on a row is the one that opened it).
    When the segment or the definition changes, the open row gets `valid_to` = this run's time and a
    new row opens with `valid_from` = the same time, so at every instant a customer has at most one
    segment per family. Customers no longer assigned (e.g. an id retired by a merge) are closed.
    One transaction (`fold_membership_history` in a transaction of its own); re-running scoring in the
    same run changes nothing (idempotent), and neither does a new run that finds every customer in the
    segment it has (it opens and closes nothing, only its run is recorded).
    """
    with transaction(con):
        return fold_membership_history(con, run_id)


def fold_membership_history(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    """`update_membership_history` in the caller's transaction."""
    ensure_tables(con, HISTORY_TABLE, SCORING_RUNS_TABLE)
    existing = con.execute(f"select scored_at from {SCORING_RUNS_TABLE} where dagster_run_id = ?", [run_id]).fetchall()
    if existing:
        at = existing[0][0]
    else:
        at = con.execute("select current_timestamp::timestamp").fetchall()[0][0]
        con.execute(
            f"""insert into {SCORING_RUNS_TABLE}
                select ?, ?::timestamp,
                       any_value(model_version) filter (where segment_family = 'behavioural'),
                       any_value(definition_version) filter (where segment_family = 'behavioural'),
                       any_value(definition_version) filter (where segment_family = 'rfm'),
                       count(distinct customer_id)
                from {ASSIGNMENTS_TABLE}""",
            [run_id, at],
        )
    closed = con.execute(
        f"""update {HISTORY_TABLE} as h
            set valid_to = ?::timestamp, is_current = false, closed_run_id = ?
            where h.is_current and not exists (
                select 1 from {ASSIGNMENTS_TABLE} as a
                where a.customer_id = h.customer_id and a.segment_family = h.segment_family
                  and a.segment_key = h.segment_key
                  and a.definition_version is not distinct from h.definition_version)""",
        [at, run_id],
    ).fetchall()[0][0]
    opened = con.execute(
        f"""insert into {HISTORY_TABLE}
            select a.customer_id, a.segment_family, a.segment_key, a.segment_name, a.model_name,
                   a.model_version, a.definition_version, a.is_fallback, a.fallback_reason,
                   ?::timestamp, null, true, ?, null
            from {ASSIGNMENTS_TABLE} as a
            where not exists (
                select 1 from {HISTORY_TABLE} as h
                where h.is_current and h.customer_id = a.customer_id and h.segment_family = a.segment_family)""",
        [at, run_id],
    ).fetchall()[0][0]
    return {"opened": int(opened), "closed": int(closed)}


def write_definition(con: duckdb.DuckDBPyConnection, definition, run_id: str) -> None:
    """Record a segment definition version (one row per name and version) and the run that used it last."""
    import json

    ensure_tables(con, DEFINITIONS_TABLE)
    con.execute(
        f"""insert into {DEFINITIONS_TABLE}
            values (?, ?, ?, ?, ?, ?, current_timestamp::timestamp, ?)
            on conflict do update set last_used_run_id = excluded.last_used_run_id""",
        [
            definition.name,
            definition.version,
            definition.family,
            definition.description,
            definition.content_sha256,
            json.dumps(definition.raw, sort_keys=True),
            run_id,
        ],
    )


@dataclass(frozen=True)
class Coverage:
    """How far `segments.customer_segments` breaks "one segment per customer per family, from the
    current version" (every count 0 when it holds)."""

    customers: int
    per_family: dict[str, dict[str, int]]
    rows_of_unknown_family: int

    @property
    def holds(self) -> bool:
        return self.rows_of_unknown_family == 0 and not any(v for c in self.per_family.values() for v in c.values())


def segment_coverage(con: duckdb.DuckDBPyConnection, expected_version: dict[str, str]) -> Coverage:
    """Per family of SEGMENT_FAMILIES: customers of marts.customers without a segment, with several,
    and rows not from `expected_version[family]`; plus rows of a family nobody writes."""
    customers = con.execute("select count(*) from marts.customers").fetchall()[0][0]
    per_family = {}
    for family in SEGMENT_FAMILIES:
        missing, duplicated, other_version = con.execute(
            """select (select count(*) from marts.customers c where not exists
                          (select 1 from segments.customer_segments s
                           where s.customer_id = c.customer_id and s.segment_family = ?)),
                      (select count(*) from (select customer_id from segments.customer_segments
                                             where segment_family = ? group by 1 having count(*) > 1)),
                      (select count(*) from segments.customer_segments
                       where segment_family = ? and model_version <> ?)""",
            [family, family, family, expected_version[family]],
        ).fetchall()[0]
        per_family[family] = {
            "customers_without_segment": missing,
            "customers_with_several_segments": duplicated,
            "rows_not_from_current_version": other_version,
        }
    unknown = con.execute(
        "select count(*) from segments.customer_segments "
        f"where segment_family not in ({', '.join('?' for _ in SEGMENT_FAMILIES)})",
        list(SEGMENT_FAMILIES),
    ).fetchall()[0][0]
    return Coverage(customers, per_family, unknown)
