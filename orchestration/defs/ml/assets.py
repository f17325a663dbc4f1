"""ML assets: train and register the segmentation model (challenger), promote it through its gates
(champion), score every customer with @champion. The work happens in `ml/segmentation/`."""

from pathlib import Path

import dagster as dg

from ml.model_registry import DAGSTER_RUN_TAG, DAGSTER_RUN_URL_TAG, git_sha
from ml.prediction.segments import PredictiveFamily
from ml.segmentation.definition import SegmentDefinition, load_definition
from ml.segmentation.model import ModelRef, read_training_features, train_and_register
from ml.segmentation.playbooks import ACTIONS_TABLE, ALERTS_TABLE, load_playbooks
from ml.segmentation.promotion import promote, version_trained_by
from ml.segmentation.scoring import score_customers
from ml.segmentation.store import DEFINITIONS_TABLE, HISTORY_TABLE, PROFILES_TABLE, SCORING_RUNS_TABLE
from orchestration.dbt import manifest_sha256
from orchestration.keys import (
    ASSIGNMENTS_KEY,
    CHAMPION_KEY,
    FEATURES_KEY,
    MODEL_KEY,
    PREDICTIONS_KEY,
    WAREHOUSE_POOL,
    stage,
)
from orchestration.project import definition_in_use, lock_for, prediction_in_use
from orchestration.resources import MlflowResource, WarehouseResource
from orchestration.settings import get_settings
from warehouse.summary import row_counts


class SegmentationConfig(dg.Config):
    """The behavioural segmentation run: which definition file (algorithms, k range, gates; empty = the
    project's definition in use, `orchestration.project.definition_in_use`) and seed."""

    definition_file: str = ""
    seed: int = 0


def training_tags(context: dg.AssetExecutionContext) -> dict[str, str]:
    """The MLflow tags of a training run: the Dagster run (id and page), the code and the dbt manifest."""
    settings = get_settings()
    return {
        DAGSTER_RUN_TAG: context.run_id,
        DAGSTER_RUN_URL_TAG: settings.dagster_run_url(context.run_id),
        "git_sha": git_sha(),
        "dbt_manifest_sha": manifest_sha256(settings.home),
    }


def model_links(mlflow: MlflowResource, ref: ModelRef) -> dict[str, dg.MetadataValue]:
    """Links to a registered version and the run that logged it, in the MLflow UI."""
    return {
        "mlflow_run_id": dg.MetadataValue.text(ref.run_id),
        "mlflow_run": dg.MetadataValue.url(mlflow.run_url(ref.run_id)),
        "mlflow_model_version": dg.MetadataValue.url(mlflow.model_version_url(ref.name, ref.version)),
    }


def definition_of_run(definition_file: str = "") -> tuple[SegmentDefinition, Path]:
    """The definition (validated against its version lock) and its file: `definition_file`, or the one
    the project uses."""
    settings = get_settings()
    in_use = definition_in_use(settings.project, settings.definition_state_path)
    path = Path(definition_file) if definition_file else in_use.path
    return load_definition(path, lock_for(settings.project, path)), path


@dg.asset(
    key=MODEL_KEY,
    deps=[FEATURES_KEY],
    group_name="ml",
    pool=WAREHOUSE_POOL,  # reads the warehouse: DuckDB lets no other process open it during a write
    kinds={"mlflow", "scikit-learn"},
    op_tags=stage("training"),
    description="Behavioural segmentation (candidates per the versioned definition, surrogate rules), registered in "
    "MLflow as `customer_segmentation` with alias challenger; the promotion step decides on champion.",
)
def customer_segmentation(
    context: dg.AssetExecutionContext, config: SegmentationConfig, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    definition, path = definition_of_run(config.definition_file)
    with warehouse.connect() as con:
        features = read_training_features(con, definition, context.run_id)
    outcome = train_and_register(
        features,
        definition,
        path.read_text(),
        seed=config.seed,
        tracking_uri=mlflow.tracking_uri,
        artifacts_dir=mlflow.artifacts_dir,
        tags=training_tags(context),
    )
    metadata = {
        "trained": outcome.ref is not None and not outcome.reused,
        # the same data, definition and seed as a registered version: that version, not a copy
        "reused_version": outcome.reused,
        "definition_version": outcome.definition_version,
        "fallback_customers": dg.MetadataValue.json(outcome.fallback_customers),
    }
    if outcome.ref is None:
        context.log.warning(
            f"training skipped: {outcome.skipped_reason}; fallback reasons {outcome.fallback_customers}"
        )
        return dg.MaterializeResult(metadata={**metadata, "reason": outcome.skipped_reason})
    ref = outcome.ref
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "model_name": ref.name,
            "model_version": ref.version,
            "model_uri": ref.model_uri,
            **model_links(mlflow, ref),
            "algorithm": outcome.algorithm,
            "k": outcome.k,
            **outcome.metrics,
            "training_rows": outcome.eligible_customers,
        }
    )


@dg.asset(
    key=CHAMPION_KEY,
    deps=[MODEL_KEY],
    group_name="ml",
    pool=WAREHOUSE_POOL,  # serialises registry writes with training and scoring
    kinds={"mlflow"},
    op_tags=stage("training"),
    description="The promotion step: the version this run trained becomes `customer_segmentation@champion` only if "
    "it passes its definition's gates (k range, silhouette, bootstrap stability, smallest segment share, surrogate "
    "fidelity), and then loses the `challenger` alias. A failing version stays challenger and the champion is "
    "untouched. The check `challenger_passes_promotion_gates` reports the verdict.",
)
def customer_segmentation_champion(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> dg.MaterializeResult:
    model_name = definition_of_run()[0].model_name
    version = version_trained_by(mlflow.tracking_uri, context.run_id, model_name)
    if version is None:
        return dg.MaterializeResult(metadata={"promoted_to_champion": False, "note": "no model trained in this run"})
    decision = promote(mlflow.tracking_uri, version, model_name)
    return dg.MaterializeResult(
        metadata={
            "model_name": model_name,
            "challenger_version": decision.version,
            "promoted_to_champion": decision.passed,
            "failures": dg.MetadataValue.json(decision.failures),
            "definition_version": decision.definition_version,
            "gates": dg.MetadataValue.json(decision.gates),
        }
    )


# What the scoring step writes besides the assignments, each read back by dbt as a source of the same key.
SCORING_OUTPUTS = {
    DEFINITIONS_TABLE: "One row per segment definition version (family, version, content hash, the definition as "
    "JSON): what each family's segments mean.",
    PROFILES_TABLE: "One row per scoring run and segment: size, share, average customer (AOV, frequency, value, "
    "tenure, recency, satisfaction), churn rate and predicted value.",
    HISTORY_TABLE: "Segment membership history (SCD type 2): one row per customer, family and period in a segment.",
    SCORING_RUNS_TABLE: "One row per scoring run: when it scored, with which model and definition versions.",
    ACTIONS_TABLE: "The outbox: one row per playbook action created for a customer (channel, purpose, lawful basis, "
    "holdout flag), never repeated for the same occurrence.",
    ALERTS_TABLE: "One row per playbook alert raised by a segment move (owner, due date, revenue at stake).",
}


@dg.multi_asset(
    name="ml__customer_segment_assignments",
    specs=[
        dg.AssetSpec(
            ASSIGNMENTS_KEY,
            deps=[CHAMPION_KEY, FEATURES_KEY, PREDICTIONS_KEY],
            kinds={"duckdb", "mlflow"},
            description="One row per customer per segment family: `behavioural` from `customer_segmentation@champion` "
            "(or a fallback segment with its reason: no consent, too little history, no approved model yet) and "
            "`rfm` from the versioned RFM rule table (no profiling consent: 'Not profiled'), `predictive` from the "
            "prediction definition's segments over ml.customer_predictions (churn risk, predicted value), RFM "
            "scores on every row. The same transaction writes the profiles, history, outbox and alerts.",
        ),
        *(
            dg.AssetSpec(dg.AssetKey(table.split(".")), deps=[ASSIGNMENTS_KEY], kinds={"duckdb"}, description=text)
            for table, text in SCORING_OUTPUTS.items()
        ),
    ],
    group_name="ml",
    pool=WAREHOUSE_POOL,
    op_tags=stage("scoring"),
)
def customer_segment_assignments(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource
):
    settings = get_settings()
    definition = definition_of_run()[0]
    playbooks = load_playbooks(settings.project.playbooks, settings.project.lock)
    with warehouse.connect() as con:
        predictive = PredictiveFamily.read(con, prediction_in_use(settings.project))
        result = score_customers(con, mlflow.tracking_uri, context.run_id, definition, playbooks, [predictive])
    yield dg.MaterializeResult(
        asset_key=ASSIGNMENTS_KEY,
        metadata={
            "dagster/row_count": result.rows,
            "model_version": result.model_version,
            "definition_version": result.definition_version,
            "rfm_rules_version": result.rfm_rules_version,
            "segment_profile_rows": result.profile_rows,
            "history_rows_opened": result.history["opened"],
            "history_rows_closed": result.history["closed"],
            "playbooks_version": result.playbooks_version,
            "playbook_results": dg.MetadataValue.json(result.playbook_results),
            "segment_sizes": dg.MetadataValue.json(result.segment_sizes),
        },
    )
    with warehouse.connect(read_only=True) as con:
        rows = row_counts(con, SCORING_OUTPUTS)
    for table in SCORING_OUTPUTS:  # after the assignments, which they depend on
        yield dg.MaterializeResult(asset_key=table.split("."), metadata={"dagster/row_count": rows[table]})
