"""Every table the Python side of the pipeline writes, defined once.

dbt owns the tables it builds (staging, intermediate, marts, segments) and `warehouse/contracts.py`
derives the raw tables from the landing contract. The tables below are written by Python (the
ingest's audit trail, identity resolution's state, the segment write-back and the activation
outbox) and read by dbt as sources. `ensure_tables()` creates the ones a step needs, with their
schema, before the step writes (`replace_table()` for a table a step rewrites whole); later columns
are added by `MIGRATIONS` so that older warehouses keep working.
"""

from __future__ import annotations

import re

import duckdb

# qualified name -> column list (the part after `create table ... `)
TABLES: dict[str, str] = {
    # --- audit: the ingest's ledger and quarantine (warehouse/ingest.py) ---
    "audit.ingest_ledger": """(
        source_table varchar not null,
        source_file varchar not null,
        file_sha256 varchar not null,
        file_bytes bigint,
        rows_read bigint,
        rows_loaded bigint,
        rows_quarantined bigint,
        status varchar not null,          -- loaded | failed
        message varchar,
        extra_columns varchar[],
        loaded_at timestamp not null,
        run_id varchar
    )""",
    # --- audit: one row per pipeline run that reached the ingest (warehouse/run_records.py) ---
    "audit.pipeline_runs": """(
        run_id varchar primary key,
        run_seq bigint not null,          -- 1, 2, ... in the order runs started (runs on a home never overlap)
        started_at timestamp not null,    -- UTC
        files_loaded bigint,              -- landing files this run's ingest loaded; null until the ingest ended
        published_at timestamp,           -- UTC; set by the publication that ended the run
        outcome varchar,                  -- succeeded | failed | reaped; null while running or when unknown
        ended_at timestamp,               -- UTC
        message varchar
    )""",
    # the lawful basis of each purpose in force, per source system ('*' = default), from the user's
    # project (warehouse/lawful_bases.py); replaced whole when the project changes it
    "audit.lawful_bases": """(
        purpose varchar not null,         -- profiling | marketing_email | marketing_sms
        source_system varchar not null,   -- crm | erp | support | events | '*' (every other source)
        basis varchar not null,           -- consent | legitimate_interest | contract
        project varchar not null,
        recorded_at timestamp not null,
        run_id varchar,
        primary key (purpose, source_system)
    )""",
    # the currency amounts are converted to, from the user's project (warehouse/base_currency.py): one row
    "audit.base_currency": """(
        currency varchar not null,        -- ISO 4217; erp.fx_rates holds rates to it
        project varchar not null,
        recorded_at timestamp not null,
        run_id varchar
    )""",
    # every version of a raw row that a later delivery replaced (updated: same key, other values) or
    # deleted (a deletion file), with where it came from and what replaced it: the raw tables hold the
    # current version of each key
    "audit.record_versions": """(
        source_table varchar not null,
        record_key json not null,         -- the primary key's values
        record json not null,             -- the replaced row (contract columns)
        source_file varchar not null,     -- the file the replaced row came from
        source_row bigint,
        file_sha256 varchar not null,
        loaded_at timestamp not null,
        change varchar not null,          -- updated | deleted
        replaced_by_file varchar not null,
        replaced_at timestamp not null,
        run_id varchar
    )""",
    "audit.quarantine": """(
        source_table varchar not null,
        source_file varchar not null,
        source_row bigint,                -- 1-based data record number in the file
        file_sha256 varchar not null,
        stage varchar not null,           -- ingest
        reason_kind varchar not null,     -- first reason's kind, for aggregation
        reason varchar not null,          -- every reason, '; '-separated
        raw_record varchar,               -- the row as delivered (JSON object or the raw line)
        quarantined_at timestamp not null,
        run_id varchar
    )""",
    # --- identity: identity resolution's state between runs (ml/identity/store.py) ---
    "identity.customer_source_records": """(
        record_id varchar primary key, source_system varchar not null, source_record_id varchar not null,
        customer_id varchar not null, matched_on varchar not null, match_probability double,
        cluster_size integer not null, run_id varchar not null, resolved_at timestamp not null
    )""",
    "identity.match_edges": """(
        record_id_l varchar not null, record_id_r varchar not null, rule varchar not null,
        match_probability double, run_id varchar not null
    )""",
    "identity.identity_ledger": """(
        run_id varchar not null, recorded_at timestamp not null, event_type varchar not null,
        customer_id varchar not null, previous_customer_id varchar not null, record_count integer not null,
        record_ids varchar[] not null, reason varchar not null, is_applied boolean not null
    )""",
    "identity.customer_id_redirects": """(
        retired_customer_id varchar primary key, customer_id varchar not null, retired_run_id varchar not null
    )""",
    # one row per item (review_key: md5 of kind and record ids; unique by the index ml/identity/store.py
    # creates): a run that lists an item again refreshes it instead of adding it. run_id / last_seen_at:
    # the latest run that listed it; first_run_id / created_at: the first.
    "identity.review_queue": """(
        run_id varchar not null, created_at timestamp not null, kind varchar not null,
        record_ids varchar[] not null, customer_ids varchar[] not null, detail varchar not null,
        review_key varchar, first_run_id varchar, last_seen_at timestamp
    )""",
    "identity.resolution_runs": """(
        run_id varchar primary key, resolved_at timestamp not null, is_applied boolean not null,
        records integer not null, customers integer not null, previous_customers integer not null,
        new_customers integer not null, merges integer not null, splits integer not null, churn double not null,
        bridges integer not null, oversized_clusters integer not null, reference_conflicts integer not null,
        shared_keys integer not null, vetoed_pairs integer not null, multi_source_share double not null,
        max_cluster_size integer not null, cluster_size_distribution json not null,
        edges_by_rule json not null, timings json not null, config json not null, splink_model json not null
    )""",
    # --- ml: the segment write-back (ml/segmentation/store.py) ---
    # replaced as a whole by every scoring run (`replace_table`)
    "ml.customer_segment_assignments": """(
        customer_id varchar, segment_family varchar, segment_key varchar, segment_name varchar,
        r_score integer, f_score integer, m_score integer,
        model_name varchar, model_version varchar, definition_version varchar,
        assigned_at timestamp, reason varchar, is_fallback boolean, fallback_reason varchar,
        dagster_run_id varchar
    )""",
    "ml.segment_profiles": """(
        dagster_run_id varchar not null, profiled_at timestamp not null,
        segment_family varchar not null, segment_key varchar not null, segment_name varchar not null,
        customers bigint not null, share double not null,
        avg_aov_base double, avg_frequency double, total_revenue_base double, avg_revenue_base double,
        avg_tenure_days double, avg_recency_days double, avg_csat double,
        model_version varchar, definition_version varchar,
        primary key (dagster_run_id, segment_family, segment_key)
    )""",
    "ml.segment_membership_history": """(
        customer_id varchar not null, segment_family varchar not null,
        segment_key varchar not null, segment_name varchar not null,
        model_name varchar, model_version varchar, definition_version varchar,
        is_fallback boolean, fallback_reason varchar,
        valid_from timestamp not null, valid_to timestamp, is_current boolean not null,
        opened_run_id varchar not null, closed_run_id varchar
    )""",
    "ml.segment_scoring_runs": """(
        dagster_run_id varchar primary key, scored_at timestamp not null,
        behavioural_model_version varchar, behavioural_definition_version varchar,
        rfm_definition_version varchar, customers bigint not null
    )""",
    "ml.segment_definitions": """(
        definition_name varchar not null, definition_version varchar not null, family varchar not null,
        description varchar, content_sha256 varchar not null, content json not null,
        first_used_at timestamp not null, last_used_run_id varchar not null,
        primary key (definition_name, definition_version)
    )""",
    # --- ml: churn risk and future value of every customer (ml/prediction/scoring.py; replaced whole) ---
    "ml.customer_predictions": """(
        customer_id varchar primary key, as_of_date date, horizon_days integer,
        churn_probability double, expected_orders double, expected_revenue_base double,
        not_predicted_reason varchar, churn_model_version varchar, value_model_version varchar,
        definition_version varchar not null, predicted_at timestamp not null, dagster_run_id varchar not null
    )""",
    # --- ml: the activation outbox (ml/segmentation/playbooks.py writes it, CRM syncs read it) ---
    "ml.segment_actions": """(
        action_id varchar primary key, action_name varchar not null, playbook_version varchar not null,
        customer_id varchar not null, segment_family varchar not null, segment_key varchar not null,
        trigger_kind varchar not null, from_segment_key varchar, channel varchar not null,
        purpose varchar not null, template_key varchar not null, owner varchar not null,
        is_holdout boolean not null, due_at timestamp not null, created_at timestamp not null,
        created_run_id varchar not null
    )""",
    "ml.segment_alerts": """(
        alert_id varchar primary key, alert_name varchar not null, playbook_version varchar not null,
        customer_id varchar not null, segment_family varchar not null, from_segment_key varchar not null,
        to_segment_key varchar not null, revenue_base double, owner varchar not null,
        due_date date not null, created_at timestamp not null, created_run_id varchar not null
    )""",
}

# Columns added after a table was first released, applied in order to warehouses created before.
MIGRATIONS: dict[str, tuple[str, ...]] = {
    # a stable key per review item (rows of older warehouses get theirs, folded per key, from
    # ml/identity/store.py `ensure_schema`, which then makes the key unique)
    "identity.resolution_runs": (
        # the threshold the run linked at and how it was set; what the model compared and blocked on
        "add column if not exists match_threshold double",
        "add column if not exists linkage json",
    ),
    "identity.review_queue": (
        "add column if not exists review_key varchar",
        "add column if not exists first_run_id varchar",
        "add column if not exists last_seen_at timestamp",
        # a reviewer's decision on the item's pair of records (identity overrides file); null = waiting
        "add column if not exists decision varchar",
        "add column if not exists decided_by varchar",
        "add column if not exists decision_reason varchar",
    ),
    "ml.segment_profiles": (
        # from ml.customer_predictions: how many of the segment are predicted, their mean churn probability,
        # predicted revenue in the horizon and its growth over their past revenue per horizon
        "add column if not exists predicted_customers bigint",
        "add column if not exists churn_rate double",
        "add column if not exists avg_expected_revenue_base double",
        "add column if not exists total_expected_revenue_base double",
        "add column if not exists value_growth double",
    ),
    "ml.segment_actions": (
        # the lawful basis the action rests on when it was created (consent, legitimate_interest, contract)
        "add column if not exists lawful_basis varchar",
    ),
    "audit.ingest_ledger": (
        # rows identical to a row loaded before (a corrected file delivered again): neither loaded nor rejected
        "add column if not exists rows_already_loaded bigint default 0",
        # the file's modification time when it was read: with source_file and file_bytes, the stat cache
        "add column if not exists file_mtime_ns bigint",
        # ... and its inode change time, which no tool can set back: a rewrite that restores size and mtime
        # (`cp -p`, `rsync -t`, `touch -r`) still misses the cache and is hashed
        "add column if not exists file_ctime_ns bigint",
        # rows whose key was loaded before with other values: the new version replaced it (audit.record_versions)
        "add column if not exists rows_updated bigint default 0",
        # rows of a deletion file (<table>/deletes/) whose record was deleted (audit.record_versions)
        "add column if not exists rows_deleted bigint default 0",
    ),
    "audit.quarantine": (
        # set when a later delivery loaded a row with this row's key: the rejection was corrected
        "add column if not exists resolved_by_file varchar",
        "add column if not exists resolved_at timestamp",
    ),
}

# Columns renamed since a table could have been created, old name -> new name, raw and dbt tables included:
# `rename_columns` gives an older warehouse the new names, values kept. Money columns were `*_eur` until the
# base currency became a project setting (`base_currency:` in segments.yaml).
RENAMED_COLUMNS: dict[str, dict[str, str]] = {
    "erp.fx_rates": {"rate_to_eur": "rate_to_base"},
    "ml.segment_profiles": {
        "avg_aov_eur": "avg_aov_base",
        "total_revenue_eur": "total_revenue_base",
        "avg_revenue_eur": "avg_revenue_base",
    },
    "ml.segment_alerts": {"revenue_eur": "revenue_base"},
    # incremental dbt models keep their rows across runs
    "marts.customer_features_history": {
        "monetary_eur": "monetary_base",
        "gross_revenue_eur": "gross_revenue_base",
        "discount_eur": "discount_base",
        "aov_eur": "aov_base",
    },
}

CATALOG = re.compile(r"^[a-z_][a-z0-9_]*$")


def rename_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply `RENAMED_COLUMNS` where a table still has an old name and not the new one (any run does it
    before it reads or writes those tables); returns `table.old -> new` for each rename made."""
    present = {
        (f"{schema}.{table}", column)
        for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_catalog = current_database()"
        ).fetchall()
    }
    done = []
    for table, renames in RENAMED_COLUMNS.items():
        for old, new in renames.items():
            if (table, old) in present and (table, new) not in present:
                con.execute(f"alter table {table} rename column {old} to {new}")
                done.append(f"{table}.{old} -> {new}")
    return done


def ensure_tables(con: duckdb.DuckDBPyConnection, *names: str, catalog: str | None = None) -> None:
    """Create the schemas and tables `names` (keys of TABLES) where missing, then apply their migrations.

    `catalog`: the attached database that holds them, when the connection's default is another one
    (identity resolution works in memory with the warehouse attached)."""
    if catalog is not None and not CATALOG.match(catalog):
        raise ValueError(f"not a catalog name: {catalog!r}")
    prefix = f"{catalog}." if catalog else ""
    for name in names:
        schema = name.split(".")[0]
        con.execute(f"create schema if not exists {prefix}{schema}")
        con.execute(f"create table if not exists {prefix}{name} {TABLES[name]}")
        for change in MIGRATIONS.get(name, ()):
            con.execute(f"alter table {prefix}{name} {change}")


def replace_table(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Create `name` (a key of TABLES) empty, dropping what it held: for tables a step rewrites whole.
    Run it in the same transaction as the insert that fills it, so readers never see it empty."""
    con.execute(f"create schema if not exists {name.split('.')[0]}")
    con.execute(f"create or replace table {name} {TABLES[name]}")
