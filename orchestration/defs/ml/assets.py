"""ML assets: train + register the segmentation model as challenger (the promotion gate in checks.py
may make it champion), then score every customer with @champion."""

import itertools
import subprocess
from pathlib import Path

import dagster as dg

from ml.fallback import fallback_assignments, fallback_reasons
from ml.feature_registry import ELIGIBILITY_COLUMNS, load_registry, require_purpose
from ml.registry import assign_segments_in_chunks, load_champion_if_any, log_segmentation_model
from ml.rfm import FAMILY as RFM_FAMILY
from ml.rfm import MODEL_NAME as RFM_MODEL_NAME
from ml.rfm import rfm_assignments, rule_table
from ml.segment_definitions import BEHAVIOURAL, load_definition, parse_definition
from ml.segmentation import PROFILE_COLUMNS, train_segmentation
from orchestration.defs.transform.assets import manifest_sha256
from orchestration.resources import MlflowResource, WarehouseResource
from orchestration.settings import PROJECT_ROOT, WAREHOUSE_POOL
from warehouse.playbooks import evaluate_playbooks, load_playbooks
from warehouse.segments_io import (
    definition_used_by_run,
    family_rows,
    update_membership_history,
    write_assignments,
    write_definition,
    write_profiles,
)

FEATURES_KEY = dg.AssetKey(["marts", "customer_features"])
MODEL_KEY = dg.AssetKey(["ml", "customer_segmentation"])
ASSIGNMENTS_KEY = dg.AssetKey(["ml", "customer_segment_assignments"])
REGISTERED_MODEL = "customer_segmentation"


def _definition_version(tracking_uri: str, version: str) -> str:
    """The definition version the model version was trained under (its MLflow tag)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    run_id = client.get_model_version(REGISTERED_MODEL, version).run_id
    return client.get_run(run_id).data.tags.get("definition_version", "unknown")


def _champion_definition(tracking_uri: str, version: str):
    """The segment definition a model version was trained under (its logged YAML)."""
    import mlflow
    import yaml

    from ml.segment_definitions import parse_definition

    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    run_id = client.get_model_version(REGISTERED_MODEL, version).run_id
    mlflow.set_tracking_uri(tracking_uri)
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/segment_definition.yaml")
    return parse_definition(yaml.safe_load(text))


def git_sha() -> str:
    """The commit the code runs from ("unknown" outside a git checkout)."""
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def training_columns(definition) -> list[str]:
    """The columns training reads: eligibility, the definition's inputs and the profile columns.
    Every one must be registered; all but the eligibility columns must be allowed for profiling."""
    registry = load_registry()
    modelled = list(dict.fromkeys([*definition.input_columns, *PROFILE_COLUMNS]))
    require_purpose(modelled, "profiling", registry)
    require_purpose(list(ELIGIBILITY_COLUMNS), "eligibility", registry)
    # registry names are validated identifiers of the dbt model, never user input
    return list(dict.fromkeys([*ELIGIBILITY_COLUMNS, *modelled]))


class SegmentationConfig(dg.Config):
    """The behavioural segmentation run: which definition file (algorithms, k range, gates) and seed."""

    definition_file: str = str(BEHAVIOURAL)
    seed: int = 0


@dg.asset(
    key=MODEL_KEY,
    deps=[FEATURES_KEY],
    group_name="ml",
    pool=WAREHOUSE_POOL,  # reads the warehouse: DuckDB lets no other process open it during a write
    kinds={"mlflow", "scikit-learn"},
    description="Behavioural segmentation (candidates per the versioned definition, surrogate rules), registered in "
    "MLflow as `customer_segmentation` with alias challenger; the promotion gate decides on champion.",
)
def customer_segmentation(
    context: dg.AssetExecutionContext, config: SegmentationConfig, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    definition = load_definition(Path(config.definition_file))
    columns = training_columns(definition)
    with warehouse.connect() as con:
        # only what profiling may use: the definition's features, the profile columns and eligibility
        features = con.execute(f"select {', '.join(columns)} from marts.customer_features order by customer_id").df()
        write_definition(con, definition, context.run_id)
    reasons = fallback_reasons(features, definition)
    eligible = features[reasons.isna()].reset_index(drop=True)
    if len(eligible) < definition.min_training_customers:
        # Nothing is registered: the promotion gate has nothing to judge, the champion (if any) keeps scoring.
        return dg.MaterializeResult(
            metadata={
                "trained": False,
                "reason": (
                    f"{len(eligible)} eligible customers < min_training_customers={definition.min_training_customers}"
                ),
                "fallback_customers": dg.MetadataValue.json(reasons.value_counts().to_dict()),
                "definition_version": definition.version,
            }
        )
    trained = train_segmentation(eligible, definition, seed=config.seed)
    ref = log_segmentation_model(
        trained,
        tracking_uri=mlflow.tracking_uri,
        artifacts_dir=mlflow.artifacts_dir,
        registered_model_name=REGISTERED_MODEL,
        tags={"dagster_run_id": context.run_id, "git_sha": git_sha(), "dbt_manifest_sha": manifest_sha256()},
        training_df_digest_source=eligible,
        definition_yaml=Path(config.definition_file).read_text(),
    )
    return dg.MaterializeResult(
        metadata={
            "model_name": ref.name,
            "model_version": ref.version,
            "model_uri": ref.model_uri,
            "mlflow_run_id": ref.run_id,
            "algorithm": trained.algorithm,
            "k": trained.k,
            "definition_version": definition.version,
            **{
                m: float(trained.metrics[m])
                for m in ("silhouette", "stability_ari", "surrogate_fidelity", "min_segment_share")
            },
            "trained": True,
            "training_rows": len(eligible),
            "fallback_customers": dg.MetadataValue.json(reasons.value_counts().to_dict()),
            "mlflow_ui": dg.MetadataValue.url(f"{mlflow.ui_url()}/#/models/{ref.name}/versions/{ref.version}"),
        }
    )


@dg.asset(
    key=ASSIGNMENTS_KEY,
    deps=[MODEL_KEY, FEATURES_KEY],
    group_name="ml",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb", "mlflow"},
    description="One row per customer per segment family: `behavioural` from `customer_segmentation@champion` (or a "
    "fallback segment with its reason: no consent, too little history, no approved model yet) and `rfm` from the "
    "versioned RFM rule table (no profiling consent: 'Not profiled'), RFM scores on every row. Appends the run's "
    "segment profiles (size, share, average customer per family and segment) to ml.segment_profiles.",
)
def customer_segment_assignments(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource
) -> dg.MaterializeResult:
    champion = load_champion_if_any(mlflow.tracking_uri, REGISTERED_MODEL)
    # only what scoring needs: eligibility, the RFM inputs and the champion's declared input columns
    model_inputs = champion[0].metadata.get_input_schema().input_names() if champion else []
    columns = list(dict.fromkeys([*ELIGIBILITY_COLUMNS, "recency_days", "monetary_eur", *model_inputs]))
    require_purpose(columns[len(ELIGIBILITY_COLUMNS) :], "profiling", load_registry())
    with warehouse.connect() as con:
        features = con.execute(f"select {', '.join(columns)} from marts.customer_features order by customer_id").df()
        if champion is None:
            # the definition this run's training step used (e.g. --definition), else the default
            used = definition_used_by_run(con, context.run_id)
            definition = parse_definition(used) if used else load_definition()
            version, definition_version = "none", definition.version
        else:
            model, version = champion
            definition_version = _definition_version(mlflow.tracking_uri, str(version))
            # the definition the champion was trained under decides who it may place
            definition = _champion_definition(mlflow.tracking_uri, str(version))
        reasons = fallback_reasons(features, definition)
        # rfm family: the behavioural definition's consent rule applies (no consent -> not scored, "Not
        # profiled"); its history rule does not (no purchase yet is an rfm segment of its own)
        rules = rule_table()
        rfm = rfm_assignments(features, (reasons == "no_profiling_consent").to_numpy())
        behavioural = {
            "family": "behavioural",
            "model_name": REGISTERED_MODEL,
            "model_version": str(version),
            "definition_version": definition_version,
            "scores": rfm,
        }
        if champion is None:
            # the specific reason where there is one, else: no approved model yet
            reasons = reasons.fillna("no_champion_model")
        placed = features[reasons.isna()]
        unplaced = reasons.notna()
        write_definition(con, rules, context.run_id)
        # a generator: the model places one chunk of customers at a time, each written as it comes
        rows = write_assignments(
            con,
            itertools.chain(
                (
                    family_rows(chunk.assign(is_fallback=False, fallback_reason=None), **behavioural)
                    for chunk in assign_segments_in_chunks(model, placed)
                )
                if champion is not None
                else (),
                [
                    family_rows(
                        fallback_assignments(features.loc[unplaced, "customer_id"], reasons[unplaced]), **behavioural
                    ),
                    family_rows(
                        rfm,
                        family=RFM_FAMILY,
                        model_name=RFM_MODEL_NAME,
                        model_version=rules.version,
                        definition_version=rules.version,
                    ),
                ],
            ),
            run_id=context.run_id,
        )
        del features, placed, rfm, behavioural  # the write-back below runs in DuckDB: free the frames first
        profiles = write_profiles(con, context.run_id)
        history = update_membership_history(con, context.run_id)
        playbooks = load_playbooks()
        outbox = evaluate_playbooks(con, context.run_id, playbooks)
        sizes = con.execute(
            "select segment_family, segment_name, count(*) from ml.customer_segment_assignments "
            "group by all order by 1, 3 desc"
        ).fetchall()
    by_family: dict[str, dict[str, int]] = {}
    for family, name, n in sizes:
        by_family.setdefault(family, {})[name] = n
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "model_version": str(version),
            "definition_version": definition_version,
            "rfm_rules_version": rules.version,
            "segment_profile_rows": profiles,
            "history_rows_opened": history["opened"],
            "history_rows_closed": history["closed"],
            "playbooks_version": playbooks.version,
            "playbook_results": dg.MetadataValue.json(outbox),
            "segment_sizes": dg.MetadataValue.json(by_family),
        }
    )
