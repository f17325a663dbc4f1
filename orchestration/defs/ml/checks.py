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
    champion = str(champion_version(mlflow.tracking_uri, "customer_segmentation"))
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
