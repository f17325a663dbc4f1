"""Checks on the segmentation model and the segment outputs (read-only: they change nothing)."""

import dagster as dg

from ml.model_registry import CHAMPION, version_by_alias
from ml.prediction.definition import FAMILY as PREDICTIVE_FAMILY
from ml.prediction.segments import combined_version
from ml.segmentation.promotion import judge, version_trained_by
from ml.segmentation.rfm import FAMILY as RFM_FAMILY
from ml.segmentation.rfm import RFM_RULES_VERSION
from ml.segmentation.store import segment_coverage
from orchestration.defs.ml.assets import definition_of_run
from orchestration.keys import CHAMPION_KEY, CUSTOMER_SEGMENTS_KEY, WAREHOUSE_POOL, stage
from orchestration.project import prediction_in_use
from orchestration.resources import MlflowResource, WarehouseResource
from orchestration.settings import get_settings


def _champion_version(mlflow: MlflowResource, model_name: str) -> str | None:
    champion = version_by_alias(mlflow.tracking_uri, model_name, CHAMPION)
    return None if champion is None else str(champion.version)


@dg.asset_check(
    asset=CUSTOMER_SEGMENTS_KEY,
    blocking=True,
    pool=WAREHOUSE_POOL,
    op_tags=stage("quality"),
    description="Every customer of marts.customers has exactly one segment in every segment family (behavioural, "
    "rfm, predictive); behavioural rows come from the champion model version, rfm rows from the current RFM rule "
    "table, predictive rows from the churn and value champions.",
)
def assignments_cover_all_customers(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.AssetCheckResult:
    # the version every behavioural row must carry ('none' while no model has passed the promotion gate)
    champion = _champion_version(mlflow, definition_of_run()[0].model_name) or "none"
    prediction = prediction_in_use(get_settings().project)
    predictive = combined_version(
        _champion_version(mlflow, prediction.churn_model_name), _champion_version(mlflow, prediction.value_model_name)
    )
    with warehouse.connect(read_only=True) as con:
        coverage = segment_coverage(
            con, {"behavioural": champion, RFM_FAMILY: RFM_RULES_VERSION, PREDICTIVE_FAMILY: predictive}
        )
    return dg.AssetCheckResult(
        passed=coverage.holds,
        metadata={
            "customers": coverage.customers,
            "per_family": dg.MetadataValue.json(coverage.per_family),
            "rows_of_unknown_family": coverage.rows_of_unknown_family,
            "champion_version": champion,
            "rfm_rules_version": RFM_RULES_VERSION,
            "predictive_model_version": predictive,
        },
    )


@dg.asset_check(
    asset=CHAMPION_KEY,
    # Blocking stops downstream only on ERROR: a refused challenger fails with WARN while a champion
    # serves, so the day's scoring goes on with that champion (segments, history and outbox stay fresh);
    # without any champion it fails with ERROR and scoring waits for a model that passes.
    blocking=True,
    pool=WAREHOUSE_POOL,
    op_tags=stage("training"),
    description="The version this run trained passes its definition's promotion gates (k range, silhouette, "
    "bootstrap stability, smallest segment share, surrogate fidelity), so the promotion step made it champion. "
    "A refused version fails WARN while a champion serves (scoring goes on with it), ERROR when there is none "
    "(scoring waits). Only reads the registry: re-running it changes nothing.",
)
def challenger_passes_promotion_gates(
    context: dg.AssetCheckExecutionContext, mlflow: MlflowResource
) -> dg.AssetCheckResult:
    model_name = definition_of_run()[0].model_name
    version = version_trained_by(mlflow.tracking_uri, context.run.run_id, model_name)
    if version is None:  # training was skipped (too few eligible customers): nothing to judge
        return dg.AssetCheckResult(
            passed=True, metadata={"promoted_to_champion": False, "note": "no model trained in this run"}
        )
    decision = judge(mlflow.tracking_uri, version, model_name)
    champion = _champion_version(mlflow, model_name)
    return dg.AssetCheckResult(
        passed=decision.passed,
        severity=dg.AssetCheckSeverity.WARN if champion else dg.AssetCheckSeverity.ERROR,
        metadata={
            "challenger_version": decision.version,
            "promoted_to_champion": champion == decision.version,
            "champion_version": champion or "none",
            "failures": dg.MetadataValue.json(decision.failures),
            "definition_version": decision.definition_version,
            "gates": dg.MetadataValue.json(decision.gates),
            **{
                m: float(decision.metrics[m])
                for m in ("silhouette", "stability_ari", "min_segment_share", "surrogate_fidelity")
                if m in decision.metrics
            },
        },
    )
