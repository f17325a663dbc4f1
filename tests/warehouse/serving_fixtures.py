"""A small hand-made warehouse with the tables serving publishes, and a re-scoring step that changes
it the way a run does (shared by the serving unit tests and the concurrent-reader test)."""

from __future__ import annotations

from pathlib import Path

import duckdb

FAMILIES = ("behavioural", "rfm")
# marts.customers as the golden record has it: PII, provenance of PII, and the non-PII columns
CUSTOMERS_DDL = """
create table marts.customers as
select
    'c' || lpad(i::varchar, 5, '0') as customer_id,
    'Ann' || i as first_name, 'Smith' || i as last_name,
    'ann' || i || '@example.org' as email, 'crm:' || i as email_source,
    '+44 20 7946 ' || lpad(i::varchar, 4, '0') as phone, i || ' High St' as street, 'London' as city,
    'E1 6AN' as postal_code, ['GB', 'DE', 'FR'][1 + i % 3] as country, date '1980-01-01' + i::integer as birth_date,
    timestamp '2024-01-01' + to_days(i::integer) as first_seen_at, 1 + i % 3 as source_system_count,
    2 as source_record_count, ['crm:' || i, 'erp:' || i] as source_record_ids,
    i % 4 <> 0 as has_profiling_consent, i % 2 = 0 as has_marketing_email_consent
from range({n}) as t(i)
"""
FEATURES_DDL = """
create table marts.customer_features as
select customer_id, date '2025-01-01' as as_of_date, 10 + source_system_count as recency_days,
       source_system_count as frequency, 100.0 * source_system_count as monetary_base, country, has_profiling_consent
from marts.customers
"""


def make_warehouse(path: Path, run_id: str = "run-0000", customers: int = 50) -> Path:
    """marts.customers (with PII), marts.customer_features, and segments.* for one scoring run."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create schema segments")
        con.execute(CUSTOMERS_DDL.format(n=customers))
        con.execute(FEATURES_DDL)
        con.execute(
            "create table segments.customer_segments (customer_id varchar, segment_family varchar, "
            "segment_key varchar, segment_name varchar, dagster_run_id varchar)"
        )
        con.execute(
            "create table segments.segment_profiles (dagster_run_id varchar, segment_family varchar, "
            "segment_key varchar, customers bigint, share double)"
        )
        con.execute(
            "create table segments.segment_definitions as "
            "select 'behavioural' as definition_name, '2.0.0' as definition_version"
        )
        # a view is published as a table like the rest of the schema
        con.execute(
            "create view segments.segment_sizes as select segment_family, segment_key, count(*) as customers "
            "from segments.customer_segments group by all"
        )
        con.execute(
            "insert into segments.customer_segments "
            "select customer_id, f.family, f.family || '_' || (hash(customer_id) % 3)::varchar, "
            "'Segment ' || (hash(customer_id) % 3)::varchar, ? from marts.customers, (select unnest(?) as family) as f",
            [run_id, list(FAMILIES)],
        )
        append_profiles(con, run_id)
    return path


# Profile columns of the real segments.segment_profiles that its contract requires (not null), and how a
# re-scoring fills them from the current assignments; the hand-made table above has none of them.
REQUIRED_PROFILE_COLUMNS = {
    "profiled_at": "now()::timestamp",
    "segment_name": "any_value(segment_name)",
    "model_version": "any_value(model_version)",
    "definition_version": "any_value(definition_version)",
}


def append_profiles(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """This run's profiles from the current assignments (profiles are history: one set per run)."""
    present = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'segments' and table_name = 'segment_profiles'"
        ).fetchall()
    }
    extra = "".join(f", {sql} as {name}" for name, sql in REQUIRED_PROFILE_COLUMNS.items() if name in present)
    con.execute(
        # by name: works on the real segments.segment_profiles too (its optional columns stay null)
        "insert into segments.segment_profiles by name select ? as dagster_run_id, segment_family, segment_key, "
        f"count(*) as customers, count(*) / sum(count(*)) over (partition by segment_family) as share{extra} "
        "from segments.customer_segments group by segment_family, segment_key",
        [run_id],
    )


def rescore(path: Path, run_id: str, drop: int = 1) -> None:
    """A new scoring run in one transaction: `drop` customers leave, the rest get this run's id, and
    this run's profiles are appended (so profile sums equal assignment counts for the current run)."""
    with duckdb.connect(str(path)) as con:
        con.execute("begin")
        con.execute(
            "delete from segments.customer_segments where customer_id in "
            "(select distinct customer_id from segments.customer_segments order by customer_id limit ?)",
            [drop],
        )
        con.execute("update segments.customer_segments set dagster_run_id = ?", [run_id])
        append_profiles(con, run_id)
        con.execute("commit")
