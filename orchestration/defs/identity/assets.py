"""Identity resolution as one Dagster step: candidates in, stable customer ids and QA out.

The step writes the `identity` schema (see warehouse/identity_store.py) and evaluates the identity
QA checks in the same step, so a failing blocking check stops the marts before they are rebuilt on
a suspicious identity graph.
"""

import dagster as dg

from ml.identity.config import IdentityConfig
from ml.identity.resolve import connect_with_warehouse, resolve_identities
from orchestration.resources import WarehouseResource
from orchestration.settings import WAREHOUSE_POOL
from warehouse.connections import release_memory

CANDIDATES_KEY = dg.AssetKey(["intermediate", "int_identity_candidates"])
RECORDS_KEY = dg.AssetKey(["identity", "customer_source_records"])
SIDE_TABLES = {
    "identity_ledger": "Every merge and split of customer ids, with its reason and run (append-only).",
    "customer_id_redirects": "Retired customer id -> the id that carries the person now.",
    "review_queue": "Per run: bridges cut, oversized clusters split, refused references, shared keys.",
    "match_edges": "The accepted links behind the current customers (rule or Splink probability).",
    "resolution_runs": "One row per run: counts, merges, splits, churn, QA figures and the trained Splink model.",
}


class IdentityResolutionConfig(dg.Config):
    """Tunables of identity resolution (defaults: ml/identity/config.py, measured in BENCHMARKS.md)."""

    match_threshold: float = IdentityConfig.match_threshold
    strong_match_threshold: float = IdentityConfig.strong_match_threshold
    given_name_similarity: float = IdentityConfig.given_name_similarity
    surname_similarity: float = IdentityConfig.surname_similarity
    max_cluster_size: int = IdentityConfig.max_cluster_size
    max_identity_churn: float = IdentityConfig.max_identity_churn
    max_bridge_share: float = 0.02
    min_multi_source_share: float = 0.5

    def identity_config(self) -> IdentityConfig:
        return IdentityConfig(
            match_threshold=self.match_threshold,
            strong_match_threshold=self.strong_match_threshold,
            given_name_similarity=self.given_name_similarity,
            surname_similarity=self.surname_similarity,
            max_cluster_size=self.max_cluster_size,
            max_identity_churn=self.max_identity_churn,
        )


@dg.multi_asset(
    name="identity_resolution",
    specs=[
        dg.AssetSpec(
            RECORDS_KEY,
            deps=[CANDIDATES_KEY],
            description="One row per candidate record with its stable customer_id (rules, Splink, guardrails).",
            kinds={"duckdb", "splink"},
            group_name="identity",
        ),
        *[
            dg.AssetSpec(
                dg.AssetKey(["identity", name]),
                deps=[CANDIDATES_KEY],
                description=text,
                kinds={"duckdb"},
                group_name="identity",
            )
            for name, text in SIDE_TABLES.items()
        ],
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "identity_churn_within_bound",
            asset=RECORDS_KEY,
            blocking=True,
            description="Customers merged + split since the previous run stay within max_identity_churn; "
            "beyond it the new assignment is not applied and downstream stops.",
        ),
        dg.AssetCheckSpec(
            "clusters_within_size_limit",
            asset=RECORDS_KEY,
            blocking=True,
            description="No customer is made of more than max_cluster_size records.",
        ),
        dg.AssetCheckSpec(
            "bridges_below_bound",
            asset=RECORDS_KEY,
            description="Bridges cut (records joining people who contradict each other) stay below "
            "max_bridge_share of customers (warn).",
        ),
        dg.AssetCheckSpec(
            "customers_seen_in_several_sources",
            asset=RECORDS_KEY,
            description="At least min_multi_source_share of customers are seen in 2+ source systems (warn).",
        ),
    ],
    pool=WAREHOUSE_POOL,
)
def identity_resolution(
    context: dg.AssetExecutionContext, config: IdentityResolutionConfig, warehouse: WarehouseResource
):
    """Resolve every candidate record to a stable customer and record what changed."""
    identity_config = config.identity_config()
    con = connect_with_warehouse(warehouse.path)
    try:
        run = resolve_identities(con, identity_config, context.run_id)
    finally:
        con.close()
        release_memory()
    summary = run.summary()
    qa, changes = run.qa, run.changes
    sizes = dg.MetadataValue.json(qa.cluster_size_distribution)
    yield dg.MaterializeResult(
        asset_key=RECORDS_KEY,
        metadata={
            "dagster/row_count": qa.records,
            "customers": qa.customers,
            "applied": run.applied,
            "new_customers": changes.new_customers,
            "merges": changes.merges,
            "splits": changes.splits,
            "edges_by_rule": dg.MetadataValue.json(run.linkage.edges_by_rule),
            "cluster_size_distribution": sizes,
            "seconds": summary["seconds"],
            "stage_seconds": dg.MetadataValue.json({k: round(v, 1) for k, v in run.linkage.timings.items()}),
            "splink_notes": dg.MetadataValue.json(run.linkage.notes),
        },
    )
    for name in SIDE_TABLES:
        yield dg.MaterializeResult(asset_key=dg.AssetKey(["identity", name]), metadata={"run_id": context.run_id})
    yield dg.AssetCheckResult(
        check_name="identity_churn_within_bound",
        asset_key=RECORDS_KEY,
        passed=run.applied,
        metadata={
            "churn": changes.churn,
            "max_identity_churn": identity_config.max_identity_churn,
            "merges": changes.merges,
            "splits": changes.splits,
            "previous_customers": changes.previous_customers,
            "note": "applied"
            if run.applied
            else (
                "NOT applied: inspect identity.identity_ledger (is_applied = false) for this run, then re-run "
                "with a larger max_identity_churn to accept it"
            ),
        },
    )
    yield dg.AssetCheckResult(
        check_name="clusters_within_size_limit",
        asset_key=RECORDS_KEY,
        passed=qa.max_cluster_size <= identity_config.max_cluster_size,
        metadata={
            "largest_cluster": qa.max_cluster_size,
            "limit": identity_config.max_cluster_size,
            "oversized_clusters_split": qa.oversized_clusters,
            "cluster_size_distribution": sizes,
        },
    )
    bridge_share = qa.bridges / qa.customers if qa.customers else 0.0
    yield dg.AssetCheckResult(
        check_name="bridges_below_bound",
        asset_key=RECORDS_KEY,
        passed=bridge_share <= config.max_bridge_share,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "bridges": qa.bridges,
            "bridge_share": bridge_share,
            "max_bridge_share": config.max_bridge_share,
            "reference_conflicts": qa.reference_conflicts,
            "shared_keys": qa.shared_keys,
            "vetoed_pairs": qa.vetoed_pairs,
            "review": "select * from identity.review_queue where run_id = '<run>'",
        },
    )
    yield dg.AssetCheckResult(
        check_name="customers_seen_in_several_sources",
        asset_key=RECORDS_KEY,
        passed=qa.multi_source_share >= config.min_multi_source_share,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"multi_source_share": qa.multi_source_share, "min_multi_source_share": config.min_multi_source_share},
    )
