"""The single Dagster entry point: `dagster dev -w workspace.yaml` or `segments ui` load it.

Built lazily (`@dg.definitions`), so settings are read when the code location loads, not at import.
"""

from __future__ import annotations

import dagster as dg

from orchestration.dbt import dbt_resource, ensure_manifest
from orchestration.defs.identity.assets import identity_resolution
from orchestration.defs.ingest.assets import landing_files
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
from orchestration.keys import BUILD_JOB, IDENTITY_JOB
from orchestration.resources import IdentityFilesResource, MlflowResource, ServingResource, WarehouseResource
from orchestration.settings import Settings, get_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every asset, check, job, schedule and resource of the project for one deployment."""
    settings.ensure_dirs()
    dbt_defs = build_dbt_assets(ensure_manifest(settings.home, settings.warehouse_path))
    bi_copy = build_bi_copy(segment_keys(dbt_defs))  # downstream of every segments model: runs last
    build_job = dg.define_asset_job(
        BUILD_JOB,
        selection=dg.AssetSelection.all(),
        description="Ingest new landing files, build the warehouse, train and score segments.",
    )
    identity_job = dg.define_asset_job(
        IDENTITY_JOB,
        # landing_files loads every raw table at once: the whole step, not only the person tables
        selection=dg.AssetSelection.assets(identity_resolution).upstream() | dg.AssetSelection.assets(landing_files),
        description="Ingest new landing files and re-resolve customer identities (no marts, no training).",
    )
    return dg.Definitions(
        assets=[
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
        ],
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
                tracking_uri=settings.mlflow_tracking_uri, artifacts_dir=str(settings.mlflow_artifacts_dir)
            ),
            "dbt": dbt_resource(),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(get_settings())
