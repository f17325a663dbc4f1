"""Per-layer figures of the warehouse, for the CLI's run summary and asset metadata (read-only queries)."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

LAYER_SCHEMAS = (
    "crm",
    "erp",
    "support",
    "feedback",
    "events",
    "staging",
    "reference",
    "intermediate",
    "identity",
    "marts",
    "ml",
    "segments",
    "audit",
)


def table_row_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """(schema, table, rows) for every base table of the project's schemas, in layer order."""
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' and table_schema in ({}) ".format(", ".join(f"'{s}'" for s in LAYER_SCHEMAS))
    ).fetchall()
    order = {s: i for i, s in enumerate(LAYER_SCHEMAS)}
    tables.sort(key=lambda t: (order[t[0]], t[1]))
    return [(s, t, con.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0]) for s, t in tables]


def row_counts(con: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> dict[str, int]:
    """Rows of each `schema.table` (names of the project's own tables, never user input)."""
    return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}


def table_shapes(
    con: duckdb.DuckDBPyConnection, relations: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, list[tuple[str, str]]]]:
    """(schema, name) -> (rows, [(column, type), ...]) of each table or view of `relations` that exists (an
    ephemeral model or one that failed to build is left out). The names come from the dbt manifest and are
    compared with the catalog, never spliced into SQL unchecked."""
    wanted = set(relations)
    columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, name, column, type_ in con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = current_database() order by table_schema, table_name, ordinal_position"
    ).fetchall():
        if (schema, name) in wanted:
            columns.setdefault((schema, name), []).append((column, type_))
    return {
        (schema, name): (con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0], cols)
        for (schema, name), cols in columns.items()
    }


def segment_sizes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, str, int, float]]:
    """(segment_family, model_name, model_version, segment_name, customers, share of the family) of the
    current assignments, family by family, largest segment first."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'segments' and table_name = 'customer_segments'"
    ).fetchall()[0][0]
    if not exists:
        return []
    return con.execute(
        """select segment_family, model_name, model_version, segment_name, count(*) as n,
                  count(*) / sum(count(*)) over (partition by segment_family) as share
           from segments.customer_segments group by 1, 2, 3, 4 order by segment_family, n desc, segment_name"""
    ).fetchall()


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def profiling_bases(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """(lawful basis for profiling, customers) of marts.customers, largest first (empty before dbt ran)."""
    if not _exists(con, "marts", "customers"):
        return []
    return con.execute(
        "select profiling_basis, count(*) from marts.customers group by all order by 2 desc, 1"
    ).fetchall()


def family_placement(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, int, list[tuple[str, int]]]]:
    """Per segment family: (family, customers, placed by the model or rules, [(fallback reason, customers)])."""
    if not _exists(con, "segments", "customer_segments"):
        return []
    reasons: dict[str, list[tuple[str, int]]] = {}
    for family, reason, n in con.execute(
        """select segment_family, fallback_reason, count(*) from segments.customer_segments
           where is_fallback group by 1, 2 order by 1, 3 desc, 2"""
    ).fetchall():
        reasons.setdefault(family, []).append((reason, n))
    totals = con.execute(
        """select segment_family, count(*), count(*) filter (where not is_fallback)
           from segments.customer_segments group by 1 order by 1"""
    ).fetchall()
    return [(family, n, placed, reasons.get(family, [])) for family, n, placed in totals]


def playbook_lift(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """One dict per playbook action of segments.playbook_lift (empty before the mart exists): action_name,
    lift_window_days, lift_status, treated/holdout customers, purchase rate lift and its 95% interval,
    min_group_customers, open_windows and next_window_end_date."""
    if not _exists(con, "segments", "playbook_lift"):
        return []
    cursor = con.execute(
        """select action_name, lift_window_days, lift_status, treated_customers, holdout_customers,
                  purchase_rate_lift, purchase_rate_lift_ci_low, purchase_rate_lift_ci_high, min_group_customers,
                  open_windows, next_window_end_date
           from segments.playbook_lift order by action_name"""
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def prediction_summary(con: duckdb.DuckDBPyConnection) -> dict | None:
    """ml.customer_predictions in one line's figures (None before it exists): customers, predicted, mean churn
    probability, expected revenue, horizon, model and definition versions, and why the rest are not predicted."""
    if not _exists(con, "ml", "customer_predictions"):
        return None
    row = con.execute(
        """select count(*), count(churn_probability), avg(churn_probability), sum(expected_revenue_base),
                  any_value(horizon_days), any_value(churn_model_version), any_value(value_model_version),
                  any_value(definition_version)
           from ml.customer_predictions"""
    ).fetchone()
    keys = (
        "customers",
        "predicted",
        "mean_churn_probability",
        "expected_revenue_base",
        "horizon_days",
        "churn_model_version",
        "value_model_version",
        "definition_version",
    )
    reasons = con.execute(
        "select not_predicted_reason, count(*) from ml.customer_predictions where not_predicted_reason is not null "
        "group by 1 order by 2 desc"
    ).fetchall()
    return {**dict(zip(keys, row, strict=True)), "not_predicted": reasons}
