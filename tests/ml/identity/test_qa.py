"""Identity QA verdicts: each check passes on sound figures and fails on its own defect."""

from types import SimpleNamespace

import pytest

from ml.identity.config import IdentityConfig
from ml.identity.qa import QA_CHECKS, QaThresholds, qa_verdicts


def run(applied=True, max_cluster_size=3, bridges=1, customers=100, multi_source_share=0.8):
    qa = SimpleNamespace(
        records=250,
        customers=customers,
        bridges=bridges,
        oversized_clusters=0,
        reference_conflicts=0,
        shared_keys=0,
        vetoed_pairs=0,
        multi_source_share=multi_source_share,
        max_cluster_size=max_cluster_size,
        cluster_size_distribution={"1": 40, "2": 60},
    )
    changes = SimpleNamespace(churn=0.01, merges=1, splits=0, previous_customers=99, new_customers=1)
    return SimpleNamespace(applied=applied, qa=qa, changes=changes)


def verdicts(**figures) -> dict[str, bool]:
    out = qa_verdicts(run(**figures), IdentityConfig(max_cluster_size=10), QaThresholds())
    return {v.check.name: v.passed for v in out}


def test_sound_figures_pass_every_check():
    assert verdicts() == {c.name: True for c in QA_CHECKS}


@pytest.mark.parametrize(
    ("defect", "check"),
    [
        ({"applied": False}, "identity_churn_within_bound"),
        ({"max_cluster_size": 11}, "clusters_within_size_limit"),
        ({"bridges": 3}, "bridges_below_bound"),
        ({"multi_source_share": 0.4}, "customers_seen_in_several_sources"),
    ],
)
def test_each_check_fails_on_its_defect(defect, check):
    result = verdicts(**defect)
    assert [name for name, passed in result.items() if not passed] == [check]


def test_only_churn_and_cluster_size_block():
    assert {c.name for c in QA_CHECKS if c.blocking} == {"identity_churn_within_bound", "clusters_within_size_limit"}
