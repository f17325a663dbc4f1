"""ML assets: train + register the segmentation model, then score every customer with @champion."""


import subprocess

import dagster as dg

from ml.registry import assign_segments, load_champion, log_segmentation_model
from ml.rfm import score_rfm
from ml.segmentation import train_segmentation
from orchestration.defs.transform.assets import manifest_sha256
from orchestration.resources import MlflowResource, WarehouseResource
from orchestration.settings import PROJECT_ROOT, WAREHOUSE_POOL
from warehouse.segments_io import DEFINITION_VERSION, write_assignments

FEATURES_KEY = dg.AssetKey(["marts", "customer_features"])
MODEL_KEY = dg.AssetKey(["ml", "customer_segmentation"])
ASSIGNMENTS_KEY = dg.AssetKey(["ml", "customer_segment_assignments"])
REGISTERED_MODEL = "customer_segmentation"


def git_sha() -> str:
    """The commit the code runs from ("unknown" outside a git checkout)."""
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


class SegmentationConfig(dg.Config):
    """Tunables of the behavioural clustering."""

    k_min: int = 3
    k_max: int = 7
    seed: int = 0
    sample_size: int = 20_000


@dg.asset(
    key=MODEL_KEY,
    deps=[FEATURES_KEY],
    group_name="ml",
    pool=WAREHOUSE_POOL,  # reads the warehouse: DuckDB lets no other process open it during a write
    kinds={"mlflow", "scikit-learn"},
    description="Behavioural k-means segmentation, registered in MLflow as `customer_segmentation` with alias champion.",
)
def customer_segmentation(
    context: dg.AssetExecutionContext, config: SegmentationConfig, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    with warehouse.connect(read_only=True) as con:
        features = con.execute("select * from marts.customer_features").df()
    trained = train_segmentation(
        features, k_range=range(config.k_min, config.k_max + 1), seed=config.seed, sample_size=config.sample_size
    )
    ref = log_segmentation_model(
        trained,
        tracking_uri=mlflow.tracking_uri,
        artifacts_dir=mlflow.artifacts_dir,
        registered_model_name=REGISTERED_MODEL,
        tags={"dagster_run_id": context.run_id, "git_sha": git_sha(), "dbt_manifest_sha": manifest_sha256()},
        training_df_digest_source=features,
        alias="champion",
    )
    return dg.MaterializeResult(
        metadata={
            "model_name": ref.name,
            "model_version": ref.version,
            "model_uri": ref.model_uri,
            "mlflow_run_id": ref.run_id,
            "k": trained.k,
            "silhouette": float(trained.metrics["silhouette"]),
            "training_rows": len(features),
            "mlflow_ui": dg.MetadataValue.url(f"{mlflow.ui_url()}/#/models/{ref.name}/versions/{ref.version}"),
        }
    )


@dg.asset(
    key=ASSIGNMENTS_KEY,
    deps=[MODEL_KEY, FEATURES_KEY],
    group_name="ml",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb", "mlflow"},
    description="One row per customer: behavioural segment from `customer_segmentation@champion` plus RFM scores.",
)
def customer_segment_assignments(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    model, version = load_champion(mlflow.tracking_uri, REGISTERED_MODEL)
    with warehouse.connect() as con:
        features = con.execute("select * from marts.customer_features").df()
        segments = assign_segments(model, features)
        rfm = score_rfm(features)
        rows = write_assignments(
            con, segments, rfm, model_name=REGISTERED_MODEL, model_version=str(version), run_id=context.run_id
        )
        sizes = con.execute(
            "select segment_name, count(*) from ml.customer_segment_assignments group by all order by 2 desc"
        ).fetchall()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "model_version": str(version),
            "definition_version": DEFINITION_VERSION,
            "segment_sizes": dg.MetadataValue.json({name: n for name, n in sizes}),
        }
    )
