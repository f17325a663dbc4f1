"""The identity asset and its QA checks, materialized in-process on a small warehouse file.

Each blocking check gets a deliberate defect that must make it fail: a run that merges too many
customers at once, and a cluster larger than the configured limit.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from orchestration.defs.identity.assets import identity_resolution
from orchestration.resources import IdentityFilesResource, WarehouseResource
from tests.ml.identity.fixtures import candidate, create_candidates

TABLE = "intermediate.int_identity_candidates"


def people(n: int) -> list[dict]:
    """n distinct people, each with a CRM record and an ERP account sharing their mailbox."""
    rows = []
    for i in range(n):
        first, last = f"first{chr(97 + i % 26)}{chr(97 + i // 26)}", f"last{i}"
        email = f"{first}.{last}@mail.test"
        rows.append(candidate(f"crm:C{i:03d}", first_name_key=first, last_name_key=last, email_key=email))
        rows.append(candidate(f"erp:A{i:03d}", first_name_key=first, last_name_key=last, email_key=email))
    return rows


def write(path, rows):
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists intermediate")
        create_candidates(con, TABLE, rows)


def materialize(path, **config):
    result = dg.materialize(
        [identity_resolution],
        resources={
            "warehouse": WarehouseResource(path=str(path)),
            "identity_files": IdentityFilesResource(path=str(path.parent / "identity")),
        },
        run_config={"ops": {"identity_resolution": {"config": config}}} if config else None,
        raise_on_error=False,
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return result, checks


def assignment(path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.execute("select record_id, customer_id from identity.customer_source_records").fetchall())


@pytest.fixture
def warehouse(tmp_path):
    return tmp_path / "warehouse.duckdb"


def test_clean_run_passes_every_check_and_is_stable(warehouse):
    write(warehouse, people(20))
    result, checks = materialize(warehouse)
    assert result.success
    assert all(c.passed for c in checks.values()), {n: c.metadata for n, c in checks.items() if not c.passed}
    first = assignment(warehouse)
    assert len(set(first.values())) == 20
    materialize(warehouse)
    assert assignment(warehouse) == first


def test_too_many_merges_at_once_are_not_applied_and_block(warehouse):
    rows = people(20)
    write(warehouse, rows)
    materialize(warehouse)
    before = assignment(warehouse)
    # defect: a new feed claims that half of the people share one phone and surname with their neighbour
    for i in range(0, 20, 2):
        for r in rows[2 * i : 2 * i + 4]:
            r.update(
                last_name_key=f"shared{i}", phone_nsn=f"30{i:07d}", first_name_key="firstaa", given_name_key="firstaa"
            )
    write(warehouse, rows)
    _, checks = materialize(warehouse, max_identity_churn=0.05)
    churn = checks["identity_churn_within_bound"]
    assert not churn.passed and churn.severity == dg.AssetCheckSeverity.ERROR
    assert assignment(warehouse) == before  # the current customers stay as they were
    with duckdb.connect(str(warehouse), read_only=True) as con:
        applied = con.execute("select distinct is_applied from identity.identity_ledger").fetchall()
        runs = con.execute("select is_applied, merges from identity.resolution_runs order by resolved_at").fetchall()
    assert applied == [(False,)]
    assert runs[0] == (True, 0) and runs[-1][0] is False and runs[-1][1] >= 5


def test_a_key_shared_by_too_many_records_is_refused_and_listed(warehouse):
    rows = [
        candidate(f"erp:A{i:03d}", first_name_key="anna", last_name_key="berg", email_key="anna@berg.test")
        for i in range(8)
    ]
    write(warehouse, rows)
    _, checks = materialize(warehouse, max_cluster_size=5)
    assert checks["clusters_within_size_limit"].passed
    assert len(set(assignment(warehouse).values())) == 8
    with duckdb.connect(str(warehouse), read_only=True) as con:
        kinds = [k for (k,) in con.execute("select kind from identity.review_queue").fetchall()]
    assert kinds == ["shared_email"]


def test_cluster_size_check_catches_a_guardrail_that_did_not_split(warehouse, monkeypatch):
    import ml.identity.linkage as linkage

    real = linkage.resolve_clusters

    def without_size_limit(*args, strong_strength):  # defect: the size guardrail is switched off
        return real(*args[:6], 10**9, strong_strength=strong_strength)

    monkeypatch.setattr(linkage, "resolve_clusters", without_size_limit)
    rows = [
        candidate(
            f"erp:A{i:03d}", first_name_key="anna", last_name_key="berg", phone_nsn=f"30{i}", ref_crm_customer_id="C1"
        )
        for i in range(6)
    ]
    rows.append(candidate("crm:C1", first_name_key="anna", last_name_key="berg"))
    write(warehouse, rows)
    _, checks = materialize(warehouse, max_cluster_size=5)
    sizes = checks["clusters_within_size_limit"]
    assert not sizes.passed and sizes.metadata["largest_cluster"].value == 7
