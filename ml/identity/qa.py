"""Identity QA: the verdicts a run's figures get, judged where they are measured.

Each verdict is one Dagster asset check of the identity step (the orchestration layer turns them
into `AssetCheckResult`s): two blocking ones (a churn beyond the bound is not applied, no customer
beyond the size limit) and two warnings (bridges cut, customers seen in several source systems).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ml.identity.config import IdentityConfig
from ml.identity.resolve import IdentityRun


@dataclass(frozen=True)
class QaCheck:
    """A check's name (the condition that passes), what it says and whether a failure blocks downstream."""

    name: str
    description: str
    blocking: bool


CHURN = QaCheck(
    "identity_churn_within_bound",
    "Customers merged + split since the previous run stay within max_identity_churn; beyond it the new "
    "assignment is not applied and downstream stops.",
    blocking=True,
)
CLUSTER_SIZE = QaCheck(
    "clusters_within_size_limit", "No customer is made of more than max_cluster_size records.", blocking=True
)
BRIDGES = QaCheck(
    "bridges_below_bound",
    "Bridges cut (records joining people who contradict each other) stay below max_bridge_share of customers (warn).",
    blocking=False,
)
MULTI_SOURCE = QaCheck(
    "customers_seen_in_several_sources",
    "At least min_multi_source_share of customers are seen in 2+ source systems (warn).",
    blocking=False,
)
QA_CHECKS = (CHURN, CLUSTER_SIZE, BRIDGES, MULTI_SOURCE)


@dataclass(frozen=True)
class QaThresholds:
    """Bounds of the two warning checks (the blocking ones read IdentityConfig)."""

    max_bridge_share: float = 0.02
    min_multi_source_share: float = 0.5


@dataclass(frozen=True)
class QaVerdict:
    check: QaCheck
    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def warn_only(self) -> bool:
        return not self.check.blocking


def qa_verdicts(run: IdentityRun, config: IdentityConfig, thresholds: QaThresholds) -> list[QaVerdict]:
    """The verdict of every check of QA_CHECKS on one identity run."""
    qa, changes = run.qa, run.changes
    bridge_share = qa.bridges / qa.customers if qa.customers else 0.0
    not_applied = (
        "NOT applied: inspect identity.identity_ledger (is_applied = false) for this run, then re-run "
        "with a larger max_identity_churn to accept it"
    )
    return [
        QaVerdict(
            CHURN,
            run.applied,
            {
                "churn": changes.churn,
                "max_identity_churn": config.max_identity_churn,
                "merges": changes.merges,
                "splits": changes.splits,
                "previous_customers": changes.previous_customers,
                "note": "applied" if run.applied else not_applied,
            },
        ),
        QaVerdict(
            CLUSTER_SIZE,
            qa.max_cluster_size <= config.max_cluster_size,
            {
                "largest_cluster": qa.max_cluster_size,
                "limit": config.max_cluster_size,
                "oversized_clusters_split": qa.oversized_clusters,
                "cluster_size_distribution": qa.cluster_size_distribution,
            },
        ),
        QaVerdict(
            BRIDGES,
            bridge_share <= thresholds.max_bridge_share,
            {
                "bridges": qa.bridges,
                "bridge_share": bridge_share,
                "max_bridge_share": thresholds.max_bridge_share,
                "reference_conflicts": qa.reference_conflicts,
                "shared_keys": qa.shared_keys,
                "vetoed_pairs": qa.vetoed_pairs,
                "review": "select * from identity.review_queue where run_id = '<run>'",
            },
        ),
        QaVerdict(
            MULTI_SOURCE,
            qa.multi_source_share >= thresholds.min_multi_source_share,
            {
                "multi_source_share": qa.multi_source_share,
                "min_multi_source_share": thresholds.min_multi_source_share,
            },
        ),
    ]
