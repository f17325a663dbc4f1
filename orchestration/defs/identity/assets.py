"""Identity resolution as one Dagster step: candidates in, stable customer ids and QA out.

The step writes the `identity` schema (ml/identity/store.py) and reports the identity QA verdicts
(ml/identity/qa.py) as checks of the same step, so a failing blocking check stops the marts before
they are rebuilt on a suspicious identity graph.
"""

from pathlib import Path

import dagster as dg

from ml.identity.config import IdentityConfig
from ml.identity.qa import QA_CHECKS, QaThresholds, qa_verdicts
from ml.identity.resolve import resolve_warehouse
from orchestration.keys import IDENTITY_CANDIDATES_KEY, SOURCE_RECORDS_KEY, WAREHOUSE_POOL, stage
from orchestration.metadata import to_metadata
from orchestration.resources import IdentityFilesResource, WarehouseResource

SIDE_TABLES = {
    "identity_ledger": "Every merge and split of customer ids, with its reason and run (append-only).",
    "customer_id_redirects": "Retired customer id -> the id that carries the person now.",
    "review_queue": "Per run: bridges cut, oversized clusters split, refused references, shared keys.",
    "match_edges": "The accepted links behind the current customers (rule or Splink probability).",
    "resolution_runs": "One row per run: counts, merges, splits, churn, QA figures and the trained Splink model.",
}


# IdentityConfig fields a data engineer may set in the launchpad (their meaning: ml/identity/config.py)
TUNABLES = (
    "match_threshold",
    "threshold_beta",
    "min_match_threshold",
    "sure_match_threshold",
    "min_link_support",
    "strong_match_threshold",
    "given_name_similarity",
    "surname_similarity",
    "max_cluster_size",
    "max_identity_churn",
    "min_profiles_for_training",
    "min_field_fill",
    "max_pairs_per_profile",
    "max_guard_miss",
)


class IdentityResolutionConfig(dg.Config):
    """Tunables of identity resolution (defaults and meaning: ml/identity/config.py and ml/identity/qa.py).
    `match_threshold` unset (the default) calibrates the threshold on every run."""

    match_threshold: float | None = IdentityConfig.match_threshold
    threshold_beta: float = IdentityConfig.threshold_beta
    min_match_threshold: float = IdentityConfig.min_match_threshold
    sure_match_threshold: float = IdentityConfig.sure_match_threshold
    min_link_support: float = IdentityConfig.min_link_support
    strong_match_threshold: float = IdentityConfig.strong_match_threshold
    given_name_similarity: float = IdentityConfig.given_name_similarity
    surname_similarity: float = IdentityConfig.surname_similarity
    max_cluster_size: int = IdentityConfig.max_cluster_size
    max_identity_churn: float = IdentityConfig.max_identity_churn
    min_profiles_for_training: int = IdentityConfig.min_profiles_for_training
    min_field_fill: float = IdentityConfig.min_field_fill
    max_pairs_per_profile: int = IdentityConfig.max_pairs_per_profile
    max_guard_miss: float = IdentityConfig.max_guard_miss
    max_bridge_share: float = QaThresholds.max_bridge_share
    min_multi_source_share: float = QaThresholds.min_multi_source_share

    def identity_config(self) -> IdentityConfig:
        return IdentityConfig(**{name: getattr(self, name) for name in TUNABLES})

    def thresholds(self) -> QaThresholds:
        return QaThresholds(self.max_bridge_share, self.min_multi_source_share)


@dg.multi_asset(
    name="identity_resolution",
    specs=[
        dg.AssetSpec(
            SOURCE_RECORDS_KEY,
            deps=[IDENTITY_CANDIDATES_KEY],
            description="One row per candidate record with its stable customer_id (rules, Splink, guardrails).",
            kinds={"duckdb", "splink"},
            group_name="identity",
        ),
        *[
            dg.AssetSpec(
                dg.AssetKey(["identity", name]),
                deps=[IDENTITY_CANDIDATES_KEY],
                description=text,
                kinds={"duckdb"},
                group_name="identity",
            )
            for name, text in SIDE_TABLES.items()
        ],
    ],
    check_specs=[
        dg.AssetCheckSpec(c.name, asset=SOURCE_RECORDS_KEY, blocking=c.blocking, description=c.description)
        for c in QA_CHECKS
    ],
    pool=WAREHOUSE_POOL,
    op_tags=stage("identity"),
)
def identity_resolution(
    context: dg.AssetExecutionContext,
    config: IdentityResolutionConfig,
    warehouse: WarehouseResource,
    identity_files: IdentityFilesResource,
):
    """Resolve every candidate record to a stable customer and record what changed."""
    identity_config = config.identity_config()
    run = resolve_warehouse(warehouse.path, identity_config, context.run_id, Path(identity_files.path))
    qa, changes, linkage = run.qa, run.changes, run.linkage.describe()
    yield dg.MaterializeResult(
        asset_key=SOURCE_RECORDS_KEY,
        metadata={
            "dagster/row_count": qa.records,
            "customers": qa.customers,
            "applied": run.applied,
            "new_customers": changes.new_customers,
            "merges": changes.merges,
            "splits": changes.splits,
            "edges_by_rule": dg.MetadataValue.json(run.linkage.edges_by_rule),
            "cluster_size_distribution": dg.MetadataValue.json(qa.cluster_size_distribution),
            "seconds": run.summary()["seconds"],
            "stage_seconds": dg.MetadataValue.json({k: round(v, 1) for k, v in run.linkage.timings.items()}),
            "match_threshold": linkage["match_threshold"]["value"] if linkage["match_threshold"] else None,
            "threshold_source": linkage["match_threshold"]["source"] if linkage["match_threshold"] else "none",
            "pairs_scored": run.linkage.pairs_scored,
            "comparisons": dg.MetadataValue.json(linkage.get("comparisons", [])),
            "blocking_rules": dg.MetadataValue.json(linkage.get("blocking_rules", {})),
            "skipped": dg.MetadataValue.json(linkage.get("skipped", [])),
            "guards": dg.MetadataValue.json(linkage.get("guards", {})),
            "overrides": dg.MetadataValue.json(linkage["overrides"]),
            "splink_notes": dg.MetadataValue.json(run.linkage.notes),
        },
    )
    for name in SIDE_TABLES:
        yield dg.MaterializeResult(asset_key=dg.AssetKey(["identity", name]), metadata={"run_id": context.run_id})
    for verdict in qa_verdicts(run, identity_config, config.thresholds()):
        yield dg.AssetCheckResult(
            check_name=verdict.check.name,
            asset_key=SOURCE_RECORDS_KEY,
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.WARN if verdict.warn_only else dg.AssetCheckSeverity.ERROR,
            metadata=to_metadata(verdict.metadata),
        )
