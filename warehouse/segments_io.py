"""Write-back of segment assignments into `ml.customer_segment_assignments` (a dbt source).

The table is replaced as a whole in one statement: re-running scoring never duplicates rows, and the
history of assignments is kept by the segment history models, not here.
"""

from __future__ import annotations

import duckdb
import pandas as pd

ASSIGNMENTS_TABLE = "ml.customer_segment_assignments"
DEFINITIONS_TABLE = "ml.segment_definitions"


def write_assignments(
    con: duckdb.DuckDBPyConnection,
    segments: pd.DataFrame,
    rfm: pd.DataFrame,
    *,
    model_name: str,
    model_version: str,
    run_id: str,
    definition_version: str,
) -> int:
    """Replace the assignments with one row per customer; returns the row count.

    `segments`: customer_id, segment_key, segment_name, reason, is_fallback, fallback_reason.
    `rfm`: customer_id, r/f/m_score, rfm_segment.
    """
    con.register("_segments", segments[["customer_id", "segment_key", "segment_name", "reason", "is_fallback", "fallback_reason"]])
    con.register("_rfm", rfm[["customer_id", "r_score", "f_score", "m_score", "rfm_segment"]])
    try:
        con.execute("create schema if not exists ml")
        con.execute(
            f"""create or replace table {ASSIGNMENTS_TABLE} as
                select s.customer_id::varchar as customer_id,
                       'behavioural' as segment_family,
                       s.segment_key::varchar as segment_key,
                       s.segment_name::varchar as segment_name,
                       r.r_score::integer as r_score, r.f_score::integer as f_score, r.m_score::integer as m_score,
                       r.rfm_segment::varchar as rfm_segment,
                       ?::varchar as model_name, ?::varchar as model_version, ?::varchar as definition_version,
                       current_timestamp::timestamp as assigned_at,
                       s.reason::varchar as reason,
                       s.is_fallback::boolean as is_fallback,
                       s.fallback_reason::varchar as fallback_reason,
                       ?::varchar as dagster_run_id
                from _segments s left join _rfm r using (customer_id)""",
            [model_name, model_version, definition_version, run_id],
        )
        return con.execute(f"select count(*) from {ASSIGNMENTS_TABLE}").fetchall()[0][0]
    finally:
        con.unregister("_segments")
        con.unregister("_rfm")


def write_definition(con: duckdb.DuckDBPyConnection, definition, run_id: str) -> None:
    """Record a segment definition version (one row per name and version) and the run that used it last."""
    import json

    con.execute("create schema if not exists ml")
    con.execute(
        f"""create table if not exists {DEFINITIONS_TABLE} (
                definition_name varchar not null, definition_version varchar not null, family varchar not null,
                description varchar, content_sha256 varchar not null, content json not null,
                first_used_at timestamp not null, last_used_run_id varchar not null,
                primary key (definition_name, definition_version))"""
    )
    con.execute(
        f"""insert into {DEFINITIONS_TABLE}
            values (?, ?, ?, ?, ?, ?, current_timestamp::timestamp, ?)
            on conflict do update set last_used_run_id = excluded.last_used_run_id""",
        [definition.name, definition.version, definition.family, definition.description,
         definition.content_sha256, json.dumps(definition.raw, sort_keys=True), run_id],
    )


def definition_used_by_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict | None:
    """The definition content (dict) the training step of `run_id` used, or None."""
    import json

    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'ml' and table_name = 'segment_definitions'"
    ).fetchall()[0][0]
    if not exists:
        return None
    rows = con.execute(f"select content from {DEFINITIONS_TABLE} where last_used_run_id = ?", [run_id]).fetchall()
    return json.loads(rows[0][0]) if rows else None
