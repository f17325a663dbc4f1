"""Prediction assets: back-test, train and register the churn and value models (challenger), promote each
through its definition's gates (champion), score every customer with the champions. The work happens in
`ml/prediction/`."""

import dagster as dg

from ml.prediction.registry import promote, train_and_register
from ml.prediction.scoring import score_predictions
from ml.prediction.training_sets import read_training_set
from ml.segmentation.promotion import version_trained_by
from orchestration.defs.ml.assets import model_links, training_tags
from orchestration.keys import (
    CHURN_CHAMPION_KEY,
    CHURN_MODEL_KEY,
    FEATURES_KEY,
    OUTCOMES_KEY,
    PREDICTIONS_KEY,
    SNAPSHOTS_KEY,
    VALUE_CHAMPION_KEY,
    VALUE_MODEL_KEY,
    WAREHOUSE_POOL,
    stage,
)
from orchestration.project import prediction_in_use
from orchestration.resources import MlflowResource, WarehouseResource
from orchestration.settings import get_settings


class PredictionConfig(dg.Config):
    """The churn and value models' training: the seed (the definition is the project's `prediction:`)."""

    seed: int = 0


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            CHURN_MODEL_KEY,
            deps=[SNAPSHOTS_KEY, OUTCOMES_KEY],
            kinds={"mlflow", "scikit-learn"},
            description="Churn risk model (calibrated gradient boosting on point-in-time snapshots, BG/NBD features), "
            "back-tested out of time and registered in MLflow as `churn_model` with alias challenger.",
        ),
        dg.AssetSpec(
            VALUE_MODEL_KEY,
            deps=[SNAPSHOTS_KEY, OUTCOMES_KEY],
            kinds={"mlflow", "scikit-learn"},
            description="Future value model (BG/NBD x Gamma-Gamma or Poisson gradient boosting, the better out of "
            "time), registered in MLflow as `value_model` with alias challenger.",
        ),
    ],
    group_name="ml",
    pool=WAREHOUSE_POOL,
    op_tags=stage("training"),
)
def prediction_models(
    context: dg.AssetExecutionContext, config: PredictionConfig, warehouse: WarehouseResource, mlflow: MlflowResource
):
    settings = get_settings()
    definition = prediction_in_use(settings.project)
    with warehouse.connect(read_only=True) as con:
        training_set = read_training_set(con, definition)
    outcome = train_and_register(
        training_set,
        definition,
        settings.project.prediction_definition.read_text(),
        seed=config.seed,
        tracking_uri=mlflow.tracking_uri,
        artifacts_dir=mlflow.artifacts_dir,
        tags=training_tags(context),
    )
    base = {
        "definition_version": outcome.definition_version,
        "labelled_rows": outcome.training_rows,
        "reused_version": outcome.reused,
    }
    if outcome.churn is None:
        context.log.warning(f"prediction training skipped: {outcome.skipped_reason}")
        for key in (CHURN_MODEL_KEY, VALUE_MODEL_KEY):
            yield dg.MaterializeResult(asset_key=key, metadata={**base, "reason": outcome.skipped_reason})
        return
    for key, ref in ((CHURN_MODEL_KEY, outcome.churn), (VALUE_MODEL_KEY, outcome.value)):
        metrics = {k: v for k, v in outcome.metrics.items() if (k.startswith("value_") == (key == VALUE_MODEL_KEY))}
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                **base,
                "model_name": ref.name,
                "model_version": ref.version,
                **model_links(mlflow, ref),
                **({"value_candidate": outcome.value_candidate} if key == VALUE_MODEL_KEY else {}),
                **{k: float(v) for k, v in metrics.items()},
            },
        )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            CHURN_CHAMPION_KEY,
            deps=[CHURN_MODEL_KEY],
            kinds={"mlflow"},
            description="`churn_model@champion`: the version this run trained, if it passes its out-of-time "
            "gates (AUC, Brier, calibration error, AUC spread across dates, gain over recency).",
        ),
        dg.AssetSpec(
            VALUE_CHAMPION_KEY,
            deps=[VALUE_MODEL_KEY],
            kinds={"mlflow"},
            description="`value_model@champion`: the version this run trained, if it passes its out-of-time "
            "gates (Spearman with actual revenue, top-decile capture over last period's spend).",
        ),
    ],
    group_name="ml",
    pool=WAREHOUSE_POOL,  # serialises registry writes with training and scoring
    op_tags=stage("training"),
)
def prediction_champions(context: dg.AssetExecutionContext, mlflow: MlflowResource):
    definition = prediction_in_use(get_settings().project)
    for key, name, gates in (
        (CHURN_CHAMPION_KEY, definition.churn_model_name, definition.churn_gates),
        (VALUE_CHAMPION_KEY, definition.value_model_name, definition.value_gates),
    ):
        version = version_trained_by(mlflow.tracking_uri, context.run_id, name)
        if version is None:
            yield dg.MaterializeResult(
                asset_key=key, metadata={"promoted_to_champion": False, "note": "no model trained in this run"}
            )
            continue
        decision = promote(mlflow.tracking_uri, name, version, gates)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "model_name": name,
                "challenger_version": version,
                "promoted_to_champion": decision.passed,
                "failures": dg.MetadataValue.json(decision.failures),
            },
        )


@dg.asset(
    key=PREDICTIONS_KEY,
    deps=[CHURN_CHAMPION_KEY, VALUE_CHAMPION_KEY, FEATURES_KEY],
    group_name="ml",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb", "mlflow"},
    op_tags=stage("scoring"),
    description="One row per customer: churn probability over the prediction horizon, expected orders and revenue "
    "in it, from `churn_model@champion` and `value_model@champion`, or why the customer is not predicted.",
)
def customer_predictions(context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource):
    definition = prediction_in_use(get_settings().project)
    with warehouse.connect() as con:
        result = score_predictions(con, mlflow.tracking_uri, context.run_id, definition)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.rows,
            "predicted": result.predicted,
            "churn_model_version": result.churn_model_version or "none",
            "value_model_version": result.value_model_version or "none",
            "mean_churn_probability": result.mean_churn_probability,
            "expected_revenue_base": result.expected_revenue_base,
            "not_predicted": dg.MetadataValue.json(result.not_predicted),
        }
    )
