"""The code location loads and keeps its invariants: keys, checks, pools, jobs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from orchestration.definitions import build_definitions
from orchestration.keys import (
    ASSIGNMENTS_KEY,
    BUILD_JOB,
    CHAMPION_KEY,
    IDENTITY_JOB,
    MODEL_KEY,
    SOURCE_RECORDS_KEY,
    STAGES,
    WAREHOUSE_POOL,
    step_stages,
)
from orchestration.settings import Settings

SNAPSHOT = Path(__file__).with_name("asset_graph.json")


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
    """Every segments model builds on the scoring asset's write-back, through its staging view (only
    staging reads dbt sources), and that view is built in the segments step, after scoring."""
    graph = defs.resolve_asset_graph()
    scored = ("customer_segments", "segment_profiles", "segment_membership_history", "segment_transitions")
    for table in (*scored, "segment_actions", "segment_alerts"):  # everything the scoring asset writes
        assert ASSIGNMENTS_KEY in ancestors(graph, dg.AssetKey(["segments", table])), table
    staged = graph.get(dg.AssetKey(["staging", "stg_ml__customer_segment_assignments"]))
    assert staged.parent_keys == {ASSIGNMENTS_KEY}
    assert staged.assets_def.op.name == "segment_models"


def ancestors(graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    seen, todo = set(), [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


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
    assert python_checks
    for check in python_checks:
        assert check.op.pool == WAREHOUSE_POOL, check.check_keys


def test_every_op_has_a_stage(defs):
    """The CLI's progress and the benchmark name each step by its stage tag: no op may lack one."""
    for job_name in (BUILD_JOB, IDENTITY_JOB):
        job = defs.resolve_job_def(job_name)
        stages = step_stages(job)
        assert {node.name for node in job.graph.nodes} == set(stages), job_name
        assert set(stages.values()) <= set(STAGES)


def test_promotion_is_an_asset_and_its_check_only_reads(defs):
    """challenger -> champion happens in an asset between training and scoring; the gate's check sits on it."""
    graph = defs.resolve_asset_graph()
    assert graph.get(CHAMPION_KEY).parent_keys == {MODEL_KEY}
    assert CHAMPION_KEY in graph.get(ASSIGNMENTS_KEY).parent_keys
    assert MODEL_KEY not in graph.get(ASSIGNMENTS_KEY).parent_keys
    gate = dg.AssetCheckKey(CHAMPION_KEY, "challenger_passes_promotion_gates")
    assert gate in graph.asset_check_keys


def graph_snapshot(defs) -> dict:
    """Keys, dependencies, groups, checks (blocking or not), jobs and op stages of the code location."""
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.path)
    checks = {}
    for key in sorted(graph.asset_check_keys, key=lambda c: (c.asset_key.path, c.name)):
        spec = graph.get_check_spec(key)
        checks[f"{key.asset_key.to_user_string()} / {key.name}"] = "blocking" if spec.blocking else "non-blocking"
    return {
        "assets": {
            k.to_user_string(): {
                "group": graph.get(k).group_name,
                "deps": sorted(p.to_user_string() for p in graph.get(k).parent_keys),
            }
            for k in keys
        },
        "checks": checks,
        "jobs": {
            name: {
                "assets": sorted(
                    k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.selected_asset_keys
                ),
                "stages": dict(sorted(step_stages(defs.resolve_job_def(name)).items())),
            }
            for name in (BUILD_JOB, IDENTITY_JOB)
        },
    }


def test_asset_graph_matches_its_snapshot(defs):
    """What the code location declares, compared with `asset_graph.json`. A change to an asset, check,
    dependency, group, job or stage shows here as a diff to review; accept it with
    `UPDATE_SNAPSHOTS=1 pytest tests/orchestration/test_definitions.py`."""
    current = graph_snapshot(defs)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    for section in ("assets", "checks", "jobs"):
        added = sorted(set(current[section]) - set(expected[section]))
        removed = sorted(set(expected[section]) - set(current[section]))
        changed = sorted(
            k for k in set(current[section]) & set(expected[section]) if current[section][k] != expected[section][k]
        )
        assert not (added or removed or changed), f"{section}: added {added}, removed {removed}, changed {changed}"


def test_dbt_runs_in_three_steps_around_the_identity_and_ml_write_backs(defs):
    graph = defs.resolve_asset_graph()
    step = lambda *key: graph.get(dg.AssetKey(list(key))).assets_def  # noqa: E731
    assert step("intermediate", "int_identity_candidates").op.name == "identity_input_models"
    assert step("identity", "customer_source_records").op.name == "identity_resolution"
    assert step("marts", "customers").op.name == "warehouse_models"
    assert step("segments", "customer_segments").op.name == "segment_models"
    # the golden record builds on identity's write-back, which builds on the candidates
    resolved = graph.get(dg.AssetKey(["intermediate", "int_customer_records_resolved"]))
    staged = graph.get(dg.AssetKey(["staging", "stg_identity__customer_source_records"]))
    assert staged.key in resolved.parent_keys and staged.parent_keys == {SOURCE_RECORDS_KEY}
    assert staged.assets_def.op.name == "warehouse_models"
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


def test_jobs_run_in_one_process_from_the_landing_folder_the_command_line_uses(defs):
    """A run launched from the UI pays the imports once (not once per step), and its launchpad starts from the
    landing folder of the deployment, not an empty field; the command line tags its runs with the label the
    UI lists a job's runs by, which names the code location of workspace.yaml."""
    import yaml

    from orchestration.keys import CODE_LOCATION, REPOSITORY_LABEL
    from orchestration.runs import REPOSITORY_LABEL_TAG, run_tags

    for name in (BUILD_JOB, IDENTITY_JOB):
        job = defs.resolve_job_def(name)
        assert job.executor_def is dg.in_process_executor
        default = job.run_config_schema.config_type.fields["ops"].config_type.fields["landing_files"]
        assert Path(default.default_value["config"]["landing_dir"]).parent.name.startswith("home"), name
    workspace = yaml.safe_load(Path(__file__).parents[2].joinpath("workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["location_name"] == CODE_LOCATION
    assert run_tags()[REPOSITORY_LABEL_TAG] == REPOSITORY_LABEL == f"__repository__@{CODE_LOCATION}"


def test_every_asset_sits_in_a_layer_group_with_its_owner(defs):
    """No asset falls into Dagster's `default` group (the tables the scoring step writes are declared outputs of
    it), each group is a layer of the warehouse with an owner, and what BI reads carries a freshness policy."""
    from orchestration.keys import BI_COPY_KEY, CUSTOMER_SEGMENTS_KEY, GROUP_OWNERS

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name in GROUP_OWNERS, key
        assert node.owners == [GROUP_OWNERS[node.group_name]], key
        assert node.description, key
    for key in (BI_COPY_KEY, CUSTOMER_SEGMENTS_KEY):
        assert graph.get(key).freshness_policy is not None
    assert graph.get(dg.AssetKey(["ml", "segment_actions"])).assets_def.op.name == "ml__customer_segment_assignments"
