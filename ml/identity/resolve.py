"""One identity run: candidates -> linkage -> stable ids -> QA -> the `identity` schema.

`resolve_identities()` is what the Dagster asset and `segments bench identity` call. It works in
an in-memory DuckDB connection with the warehouse attached as catalog `wh`, so Splink's scratch
tables never touch the warehouse file; only the results are written back, in one transaction.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from ml.identity.config import IdentityConfig
from ml.identity.linkage import LinkageResult, link_records
from ml.identity.stable_ids import IdChanges, assign_stable_ids
from ml.identity.store import (
    IdentityQa,
    count_unlinked,
    ensure_schema,
    load_previous,
    measure_qa,
    previous_model,
    write_run,
)
from warehouse.connections import duckdb_config, release_memory, use_utc

CATALOG = "wh"
CANDIDATES_TABLE = f"{CATALOG}.intermediate.int_identity_candidates"

# The user's identity files, in the identity folder (`SEGMENTS_IDENTITY_DIR`, default `$SEGMENTS_HOME/identity`)
LABELS_FILE = "labels.csv"  # labelled pairs that set the match threshold (ml/identity/threshold.py)
OVERRIDES_FILE = "overrides.csv"  # reviewers' link / never-link decisions (ml/identity/overrides.py)


@dataclass(frozen=True)
class IdentityRun:
    run_id: str
    applied: bool
    changes: IdChanges
    qa: IdentityQa
    linkage: LinkageResult
    seconds: float

    def summary(self) -> dict:
        return {
            "applied": self.applied,
            "records": self.qa.records,
            "customers": self.qa.customers,
            "new_customers": self.changes.new_customers,
            "merges": self.changes.merges,
            "splits": self.changes.splits,
            "churn": round(self.changes.churn, 6),
            "bridges": self.qa.bridges,
            "oversized_clusters": self.qa.oversized_clusters,
            "reference_conflicts": self.qa.reference_conflicts,
            "shared_keys": self.qa.shared_keys,
            "multi_source_share": round(self.qa.multi_source_share, 4),
            "max_cluster_size": self.qa.max_cluster_size,
            "edges_by_rule": self.linkage.edges_by_rule,
            "match_threshold": self.linkage.threshold.describe() if self.linkage.threshold else None,
            "pairs_scored": self.linkage.pairs_scored,
            "seconds": round(self.seconds, 1),
        }


def connect_with_warehouse(warehouse_path: Path | str) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the warehouse file attached read-write as `wh`."""
    con = use_utc(duckdb.connect(config=duckdb_config()))
    path = str(warehouse_path).replace("'", "''")
    con.execute(f"attach '{path}' as {CATALOG}")
    con.execute("set enable_progress_bar = false")
    return con


def resolve_identities(
    con: duckdb.DuckDBPyConnection,
    config: IdentityConfig,
    run_id: str,
    candidates_table: str = CANDIDATES_TABLE,
    identity_dir: Path | None = None,
) -> IdentityRun:
    """Resolve, assign stable ids, measure, and persist (applied only within the churn bound).
    `identity_dir`: the folder of the user's `labels.csv` (labelled pairs: they set the match threshold)
    and `overrides.csv` (reviewers' decisions); either may be missing."""
    t0 = time.monotonic()
    ensure_schema(con, CATALOG)
    labels = identity_dir / LABELS_FILE if identity_dir is not None else None
    linkage = link_records(
        con,
        config,
        candidates_table,
        previous_model(con, CATALOG),
        labels_path=labels if labels is not None and labels.exists() else None,
        overrides_path=identity_dir / OVERRIDES_FILE if identity_dir is not None else None,
    )
    load_previous(con, CATALOG)
    con.execute(
        """create or replace temp table identity_assignment_input as
           select r.record_id, c.cluster, c.matched_on
           from identity_clusters as c inner join identity_records as r using (node)"""
    )
    changes = assign_stable_ids(con, run_id)
    linkage.unlinked = count_unlinked(con, CATALOG)
    qa = measure_qa(con, linkage.reviews)
    applied = changes.churn <= config.max_identity_churn
    write_run(
        con,
        CATALOG,
        run_id=run_id,
        applied=applied,
        changes=changes,
        qa=qa,
        reviews=linkage.reviews,
        edges_by_rule=linkage.edges_by_rule,
        timings=linkage.timings,
        config=asdict(config),
        splink_model=linkage.splink_model,
        match_threshold=linkage.threshold.value if linkage.threshold else None,
        linkage=linkage.describe(),
    )
    return IdentityRun(run_id, applied, changes, qa, linkage, time.monotonic() - t0)


def resolve_warehouse(
    warehouse_path: Path | str, config: IdentityConfig, run_id: str, identity_dir: Path | None = None
) -> IdentityRun:
    """`resolve_identities` on the warehouse file: its own in-memory connection, closed (and its
    memory handed back) when done."""
    con = connect_with_warehouse(warehouse_path)
    try:
        return resolve_identities(con, config, run_id, identity_dir=identity_dir)
    finally:
        con.close()
        release_memory()
