"""The code location loads and keeps its invariants: keys, checks, pools, jobs."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.definitions import build_definitions
from orchestration.keys import BUILD_JOB, WAREHOUSE_POOL
from orchestration.settings import Settings


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return build_definitions(Settings(home=home, landing_dir=home / "landing"))


def all_keys(defs) -> set[dg.AssetKey]:
    return set(defs.resolve_asset_graph().get_all_asset_keys())


def test_loads_and_validates(defs):
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def(BUILD_JOB) is not None


def test_every_asset_key_is_schema_and_table(defs):
    for key in all_keys(defs):
        assert len(key.path) == 2, key


def test_layers_present(defs):
    keys = {"/".join(k.path) for k in all_keys(defs)}
    expected = {
        "crm/customers",
        "crm/consents",
        "erp/accounts",
        "erp/orders",
        "erp/order_lines",
        "erp/payments",
        "erp/fx_rates",
        "support/tickets",
        "events/events",
        "audit/ingest_ledger",
        "audit/quarantine",
        "staging/stg_crm__customers",
        "marts/customers",
        "marts/orders",
        "marts/support_tickets",
        "marts/customer_features",
        "ml/customer_segmentation",
        "ml/customer_segment_assignments",
        "segments/customer_segments",
        "segments/segment_profiles",
    }
    assert expected <= keys, expected - keys


def test_segments_are_downstream_of_ml_write_back(defs):
    graph = defs.resolve_asset_graph()
    for table in ("customer_segments", "segment_profiles"):  # the scoring asset writes both ml tables
        parents = graph.get(dg.AssetKey(["segments", table])).parent_keys
        assert dg.AssetKey(["ml", "customer_segment_assignments"]) in parents, table


def test_checks_include_dbt_tests_gx_and_reconciliation(defs):
    check_keys = defs.resolve_asset_graph().asset_check_keys
    names = {c.name for c in check_keys}
    assert {"every_file_reconciles", "customers_pass_expectation_suite", "assignments_cover_all_customers"} <= names
    dbt_checks = [
        c for c in check_keys if c.asset_key == dg.AssetKey(["marts", "customers"]) and c.name.startswith("unique")
    ]
    assert dbt_checks, "dbt tests must surface as asset checks"
    assert not any(n.startswith("check_") for n in names)


def test_everything_that_opens_the_warehouse_shares_one_pool(defs):
    """DuckDB allows one writer and no other process while it writes: assets and Python checks queue."""
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            assert node.assets_def.op.pool == WAREHOUSE_POOL, key
    python_checks = list(defs.asset_checks or [])
    assert (
        len(python_checks) == 3 + 9 + 7 + 1
    )  # reconciliation, customers GX, coverage, raw suites, mart suites, promotion gate
    for check in python_checks:
        assert check.op.pool == WAREHOUSE_POOL, check.check_keys


def test_dbt_runs_in_three_steps_around_the_identity_and_ml_write_backs(defs):
    graph = defs.resolve_asset_graph()
    step = lambda *key: graph.get(dg.AssetKey(list(key))).assets_def  # noqa: E731
    assert step("intermediate", "int_identity_candidates").op.name == "identity_input_models"
    assert step("identity", "customer_source_records").op.name == "identity_resolution"
    assert step("marts", "customers").op.name == "warehouse_models"
    assert step("segments", "customer_segments").op.name == "segment_models"
    # the golden record builds on identity's write-back, which builds on the candidates
    resolved = graph.get(dg.AssetKey(["intermediate", "int_customer_records_resolved"]))
    assert dg.AssetKey(["identity", "customer_source_records"]) in resolved.parent_keys
    identity = graph.get(dg.AssetKey(["identity", "customer_source_records"]))
    assert dg.AssetKey(["intermediate", "int_identity_candidates"]) in identity.parent_keys


def test_identity_qa_checks_block_the_marts(defs):
    graph = defs.resolve_asset_graph()
    checks = {
        c.name: c for c in graph.asset_check_keys if c.asset_key == dg.AssetKey(["identity", "customer_source_records"])
    }
    assert set(checks) >= {
        "identity_churn_within_bound",
        "clusters_within_size_limit",
        "bridges_below_bound",
        "customers_seen_in_several_sources",
    }
    specs = {s.name: s for s in step_check_specs(graph)}
    assert specs["identity_churn_within_bound"].blocking and specs["clusters_within_size_limit"].blocking


def step_check_specs(graph):
    return graph.get(dg.AssetKey(["identity", "customer_source_records"])).assets_def.check_specs


def test_bi_copy_publishes_last_after_every_segments_model(defs):
    """The serving copy waits for every segments model (and so for their blocking checks) and the
    customer marts it projects; it is part of the build job and reads the warehouse in its pool."""
    graph = defs.resolve_asset_graph()
    bi_copy = graph.get(dg.AssetKey(["serving", "bi_copy"]))
    segments = {k for k in graph.get_all_asset_keys() if k.path[0] == "segments"}
    assert {dg.AssetKey(["segments", "customer_segments"]), dg.AssetKey(["segments", "segment_profiles"])} <= segments
    assert segments <= set(bi_copy.parent_keys)
    assert {dg.AssetKey(["marts", "customers"]), dg.AssetKey(["marts", "customer_features"])} <= set(
        bi_copy.parent_keys
    )
    assert not bi_copy.child_keys  # nothing builds on it: it is the last step
    assert bi_copy.assets_def.op.pool == WAREHOUSE_POOL
    assert bi_copy.group_name == "serving"
    assert dg.AssetKey(["serving", "bi_copy"]) in defs.resolve_job_def(BUILD_JOB).asset_layer.selected_asset_keys
