"""Checks on the segment outputs."""


import dagster as dg

from ml.registry import champion_version
from orchestration.settings import WAREHOUSE_POOL
from orchestration.resources import MlflowResource, WarehouseResource

CUSTOMER_SEGMENTS_KEY = dg.AssetKey(["segments", "customer_segments"])


@dg.asset_check(
    asset=CUSTOMER_SEGMENTS_KEY,
    blocking=True,
    pool=WAREHOUSE_POOL,
    description="Every customer of marts.customers has exactly one segment, from the champion model version.",
)
def assignments_cover_all_customers(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.AssetCheckResult:
    # the version every row must carry ('none' while no model has passed the promotion gate)
    champion = str(champion_version(mlflow.tracking_uri, "customer_segmentation")) if _has_champion(mlflow) else "none"
    with warehouse.connect(read_only=True) as con:
        customers, missing, duplicated, other_version = con.execute(
            """select (select count(*) from marts.customers),
                      (select count(*) from marts.customers c where not exists
                          (select 1 from segments.customer_segments s where s.customer_id = c.customer_id)),
                      (select count(*) from (select customer_id from segments.customer_segments group by 1 having count(*) > 1)),
                      (select count(*) from segments.customer_segments where model_version <> ?)""",
            [champion],
        ).fetchone()
    return dg.AssetCheckResult(
        passed=missing == 0 and duplicated == 0 and other_version == 0,
        metadata={
            "customers": customers,
            "customers_without_segment": missing,
            "customers_with_several_segments": duplicated,
            "rows_not_from_champion": other_version,
            "champion_version": champion,
        },
    )


MODEL_KEY = dg.AssetKey(["ml", "customer_segmentation"])


def _has_champion(mlflow: MlflowResource) -> bool:
    import mlflow as mlflow_lib

    client = mlflow_lib.MlflowClient(mlflow.tracking_uri, registry_uri=mlflow.tracking_uri)
    try:
        client.get_model_version_by_alias("customer_segmentation", "champion")
        return True
    except mlflow_lib.exceptions.MlflowException:
        return False


@dg.asset_check(
    asset=MODEL_KEY,
    blocking=True,
    pool=WAREHOUSE_POOL,  # serialises registry writes with training and scoring
    description="The promotion gate: the just-trained challenger becomes champion only if it passes the definition's "
    "quality gates (k range, silhouette, bootstrap stability, smallest segment share, surrogate fidelity). "
    "A failing challenger stays challenger, the champion is untouched and scoring is blocked.",
)
def challenger_passes_promotion_gates(context: dg.AssetCheckExecutionContext, mlflow: MlflowResource) -> dg.AssetCheckResult:
    import mlflow as mlflow_lib

    from ml.registry import CHALLENGER, promote_if_passing

    client = mlflow_lib.MlflowClient(mlflow.tracking_uri, registry_uri=mlflow.tracking_uri)
    try:
        challenger = client.get_model_version_by_alias("customer_segmentation", CHALLENGER)
        trained_now = client.get_run(challenger.run_id).data.tags.get("dagster_run_id") == context.run.run_id
    except mlflow_lib.exceptions.MlflowException:
        trained_now = False
    if not trained_now:  # training was skipped (too few eligible customers): nothing to judge
        return dg.AssetCheckResult(passed=True, metadata={"promoted_to_champion": False, "note": "no model trained in this run"})
    decision = promote_if_passing(mlflow.tracking_uri, "customer_segmentation")
    return dg.AssetCheckResult(
        passed=decision.promoted,
        metadata={
            "challenger_version": decision.version,
            "promoted_to_champion": decision.promoted,
            "failures": dg.MetadataValue.json(decision.failures),
            "definition_version": decision.definition_version,
            "gates": dg.MetadataValue.json(decision.gates),
            **{m: float(decision.metrics[m]) for m in ("silhouette", "stability_ari", "min_segment_share", "surrogate_fidelity") if m in decision.metrics},
        },
    )
