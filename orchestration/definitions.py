"""The single Dagster entry point: `dagster dev -w workspace.yaml` or `segments ui` load it.

Built lazily (`@dg.definitions`), so settings are read when the code location loads, not at import.
"""

from __future__ import annotations

import gc
from datetime import timedelta

import dagster as dg

from orchestration.dbt import dbt_resource, ensure_manifest
from orchestration.defs.identity.assets import identity_resolution
from orchestration.defs.ingest.assets import IngestConfig, landing_files
from orchestration.defs.ingest.checks import every_file_reconciles
from orchestration.defs.ml.assets import (
    customer_segment_assignments,
    customer_segmentation,
    customer_segmentation_champion,
)
from orchestration.defs.ml.checks import assignments_cover_all_customers, challenger_passes_promotion_gates
from orchestration.defs.ml.prediction import customer_predictions, prediction_champions, prediction_models
from orchestration.defs.quality.checks import MART_SUITE_CHECKS, RAW_SUITE_CHECKS
from orchestration.defs.serving.assets import build_bi_copy, segment_keys
from orchestration.defs.transform.assets import build_dbt_assets
from orchestration.keys import BI_COPY_KEY, BUILD_JOB, CUSTOMER_SEGMENTS_KEY, GROUP_OWNERS, IDENTITY_JOB
from orchestration.resources import IdentityFilesResource, MlflowResource, ServingResource, WarehouseResource
from orchestration.settings import Settings, get_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every asset, check, job, schedule and resource of the project for one deployment."""
    settings.ensure_dirs()
    dbt_defs = build_dbt_assets(ensure_manifest(settings.home, settings.warehouse_path))
    bi_copy = build_bi_copy(segment_keys(dbt_defs))  # downstream of every segments model: runs last
    # The launchpad and the schedule start from the landing folder the command line uses (`get_settings`).
    ingest_config = dg.RunConfig(ops={landing_files.op.name: IngestConfig(landing_dir=str(settings.landing_dir))})
    build_job = dg.define_asset_job(
        BUILD_JOB,
        selection=dg.AssetSelection.all(),
        description="Ingest new landing files, build the warehouse, train and score segments.",
        config=ingest_config,
        # Every step writes or reads the one DuckDB file (pool `warehouse`, limit 1): steps run one after another
        # anyway, and in one process a run launched from the UI pays Python's imports once, not once per step.
        executor_def=dg.in_process_executor,
    )
    identity_job = dg.define_asset_job(
        IDENTITY_JOB,
        # landing_files loads every raw table at once: the whole step, not only the person tables
        selection=dg.AssetSelection.assets(identity_resolution).upstream() | dg.AssetSelection.assets(landing_files),
        description="Ingest new landing files and re-resolve customer identities (no marts, no training).",
        config=ingest_config,
        executor_def=dg.in_process_executor,
    )
    assets = [
        landing_files,
        *dbt_defs,
        identity_resolution,
        customer_segmentation,
        customer_segmentation_champion,
        customer_segment_assignments,
        prediction_models,
        prediction_champions,
        customer_predictions,
        bi_copy,
    ]
    return dg.Definitions(
        assets=dg.map_asset_specs(_with_owners_and_freshness, assets),
        asset_checks=[
            every_file_reconciles,
            *RAW_SUITE_CHECKS,
            *MART_SUITE_CHECKS,
            assignments_cover_all_customers,
            challenger_passes_promotion_gates,
        ],
        jobs=[build_job, identity_job],
        schedules=[
            dg.ScheduleDefinition(
                name=f"{BUILD_JOB}_schedule",
                job=build_job,
                cron_schedule="0 5 * * *",
                default_status=dg.DefaultScheduleStatus.STOPPED,
            )
        ],
        resources={
            "warehouse": WarehouseResource(path=str(settings.warehouse_path)),
            "serving": ServingResource(path=str(settings.serving_dir)),
            "identity_files": IdentityFilesResource(path=str(settings.identity_files_dir)),
            "mlflow": MlflowResource(
                tracking_uri=settings.mlflow_tracking_uri,
                artifacts_dir=str(settings.mlflow_artifacts_dir),
                ui_url=settings.mlflow_ui_url,
            ),
            "dbt": dbt_resource(),
        },
    )


# What BI reads is expected fresh daily (the build job's schedule runs at 05:00): a day and two hours late warns,
# two days late fails.
DAILY = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=48), warn_window=timedelta(hours=26))
FRESHNESS = {BI_COPY_KEY: DAILY, CUSTOMER_SEGMENTS_KEY: DAILY}


def _with_owners_and_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Each asset's owners from its group (`GROUP_OWNERS`); the published tables' freshness policy."""
    owners = [GROUP_OWNERS[spec.group_name]] if spec.group_name in GROUP_OWNERS else spec.owners
    return spec.replace_attributes(owners=owners, freshness_policy=FRESHNESS.get(spec.key, spec.freshness_policy))


@dg.definitions
def defs() -> dg.Definitions:
    """The code location as the Dagster processes load it (code server, and the run worker of a run launched
    from the UI). What is alive once it is loaded (the libraries, the definitions) lives as long as the process:
    it is kept out of the garbage collector's full collections, which every warehouse step makes
    (`warehouse.connections.release_memory`) and which otherwise walk those objects each time (~0.4 s a
    collection; `segments run` does the same around its run, `orchestration.cli.run`)."""
    definitions = build_definitions(get_settings())
    gc.collect()
    gc.freeze()
    return definitions
