"""Checks on the segment outputs."""

import dagster as dg

from ml.registry import champion_version
from orchestration.resources import MlflowResource, WarehouseResource
from orchestration.settings import WAREHOUSE_POOL

CUSTOMER_SEGMENTS_KEY = dg.AssetKey(["segments", "customer_segments"])


@dg.asset_check(
    asset=CUSTOMER_SEGMENTS_KEY,
    blocking=True,
    pool=WAREHOUSE_POOL,
    description="Every customer of marts.customers has exactly one segment in every segment family (behavioural, "
    "rfm); behavioural rows come from the champion model version, rfm rows from the current RFM rule table.",
)
def assignments_cover_all_customers(warehouse: WarehouseResource, mlflow: MlflowResource) -> dg.AssetCheckResult:
    from ml.rfm import RFM_RULES_VERSION
    from warehouse.segments_io import SEGMENT_FAMILIES

    # the version every behavioural row must carry ('none' while no model has passed the promotion gate)
    champion = str(champion_version(mlflow.tracking_uri, "customer_segmentation")) if _has_champion(mlflow) else "none"
    expected_version = {"behavioural": champion, "rfm": RFM_RULES_VERSION}
    per_family = {}
    with warehouse.connect(read_only=True) as con:
        customers = con.execute("select count(*) from marts.customers").fetchall()[0][0]
        for family in SEGMENT_FAMILIES:
            missing, duplicated, other_version = con.execute(
                """select (select count(*) from marts.customers c where not exists
                              (select 1 from segments.customer_segments s
                               where s.customer_id = c.customer_id and s.segment_family = ?)),
                          (select count(*) from (select customer_id from segments.customer_segments
                                                 where segment_family = ? group by 1 having count(*) > 1)),
                          (select count(*) from segments.customer_segments
                           where segment_family = ? and model_version <> ?)""",
                [family, family, family, expected_version[family]],
            ).fetchall()[0]
            per_family[family] = {
                "customers_without_segment": missing,
                "customers_with_several_segments": duplicated,
                "rows_not_from_current_version": other_version,
            }
        unknown = con.execute(
            "select count(*) from segments.customer_segments "
            f"where segment_family not in ({', '.join('?' for _ in SEGMENT_FAMILIES)})",
            list(SEGMENT_FAMILIES),
        ).fetchall()[0][0]
    return dg.AssetCheckResult(
        passed=unknown == 0 and all(v == 0 for counts in per_family.values() for v in counts.values()),
        metadata={
            "customers": customers,
            "per_family": dg.MetadataValue.json(per_family),
            "rows_of_unknown_family": unknown,
            "champion_version": champion,
            "rfm_rules_version": RFM_RULES_VERSION,
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
    # Blocking stops downstream only on ERROR: a refused challenger fails with WARN while a champion
    # serves, so the day's scoring goes on with that champion (segments, history and outbox stay fresh);
    # without any champion it fails with ERROR and scoring waits for a model that passes.
    blocking=True,
    pool=WAREHOUSE_POOL,  # serialises registry writes with training and scoring
    description="The promotion gate: the just-trained challenger becomes champion only if it passes the definition's "
    "quality gates (k range, silhouette, bootstrap stability, smallest segment share, surrogate fidelity). "
    "A failing challenger stays challenger and the champion is untouched: scoring goes on with the champion "
    "(WARN), or is blocked when there is no champion yet (ERROR).",
)
def challenger_passes_promotion_gates(
    context: dg.AssetCheckExecutionContext, mlflow: MlflowResource
) -> dg.AssetCheckResult:
    import mlflow as mlflow_lib

    from ml.registry import CHALLENGER, promote_if_passing

    client = mlflow_lib.MlflowClient(mlflow.tracking_uri, registry_uri=mlflow.tracking_uri)
    try:
        challenger = client.get_model_version_by_alias("customer_segmentation", CHALLENGER)
        trained_now = client.get_run(challenger.run_id).data.tags.get("dagster_run_id") == context.run.run_id
    except mlflow_lib.exceptions.MlflowException:
        trained_now = False
    if not trained_now:  # training was skipped (too few eligible customers): nothing to judge
        return dg.AssetCheckResult(
            passed=True, metadata={"promoted_to_champion": False, "note": "no model trained in this run"}
        )
    decision = promote_if_passing(mlflow.tracking_uri, "customer_segmentation")
    return dg.AssetCheckResult(
        passed=decision.promoted,
        severity=dg.AssetCheckSeverity.WARN if _has_champion(mlflow) else dg.AssetCheckSeverity.ERROR,
        metadata={
            "challenger_version": decision.version,
            "promoted_to_champion": decision.promoted,
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
