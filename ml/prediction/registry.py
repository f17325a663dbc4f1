"""The churn and value models in MLflow: back-test, fit, log, register, and promote through the gates.

One training step (`train_and_register`) back-tests the definition's models out of time on the labelled
snapshots (`ml/prediction/backtest.py`), fits the final models on every labelled snapshot and registers two
versions, `churn_model` and `value_model` (names from the definition), each with alias `challenger`, its
out-of-time metrics (what the promotion gates read), the back-test plots and report, the definition, a
signature from an aggregate example (no real row is logged) and the lineage tags of the segmentation model
(Dagster run, git commit, dbt manifest, training data digests, definition version, seed). The same training
data, definition version and seed as a registered version reuse it: nothing is fitted or registered again.

`promote` moves `champion` to a version whose metrics pass the definition's gates; a failing version stays
challenger and the champion keeps scoring.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from ml.model_registry import (
    CHALLENGER,
    DAGSTER_RUN_TAG,
    DAGSTER_RUN_URL_TAG,
    TRAINING_DATA_DIGEST,
    apply_verdict,
    client,
    training_run,
    version_tags,
)
from ml.prediction.backtest import backtest, fit_final
from ml.prediction.churn import churn_probability, input_columns
from ml.prediction.definition import PredictionDefinition
from ml.prediction.inputs import feature_matrix
from ml.prediction.plots import backtest_plots
from ml.prediction.report import backtest_markdown
from ml.prediction.training_sets import OUTCOME_COLUMNS, SNAPSHOTS_TABLE
from ml.segmentation.model import (
    PIP_REQUIREMENTS,
    ModelRef,
    aggregate_example,
    experiment_id,
    model_identity,
    reusable_version,
    reuse_version,
    training_dataset,
)

EXPERIMENT = "customer_prediction"
CHURN_GATE_METRICS = ("auc", "brier", "ece", "auc_spread", "auc_gain_over_recency")
VALUE_GATE_METRICS = ("spearman", "top_decile", "top_decile_gain_over_last_period")


class ChurnModel(mlflow.pyfunc.PythonModel):
    """pyfunc: feature frame in, `churn_probability` (no completed order in the horizon) out."""

    def __init__(self, model, columns: tuple[str, ...]):
        self.model, self.columns = model, tuple(columns)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame(
            {"churn_probability": churn_probability(self.model, feature_matrix(model_input, self.columns))}
        )


class ValueModel(mlflow.pyfunc.PythonModel):
    """pyfunc: feature frame in, `expected_orders` and `expected_revenue_base` over the horizon out."""

    def __init__(self, model, columns: tuple[str, ...]):
        self.model, self.columns = model, tuple(columns)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        predicted = self.model.predict(model_input[list(self.columns)])
        return predicted[["expected_orders", "expected_revenue_base"]].reset_index(drop=True)


@dataclass(frozen=True)
class PredictionOutcome:
    """One training step: the two registered challengers (or reused versions), or why nothing was trained."""

    definition_version: str
    training_rows: int
    skipped_reason: str | None = None
    churn: ModelRef | None = None
    value: ModelRef | None = None
    value_candidate: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    reused: bool = False


def _log_and_register(
    name: str,
    python_model,
    example: pd.DataFrame,
    *,
    experiment: str,
    tags: dict[str, str],
    identity: dict[str, str],
    dataset,
    params: dict,
    metrics: dict[str, float],
    files: dict[str, str],
    plots: list[Path],
    started_ms: int,
    description: str,
) -> ModelRef:
    signature = infer_signature(example, python_model.predict(None, example))
    with training_run(
        experiment,
        run_name=f"{name} {identity['definition_version']}",
        tags={**tags, **identity},
        started_ms=started_ms,
        description=description,
    ) as run:
        mlflow.log_params(params)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
        mlflow.log_input(dataset, context="training")
        for artifact, text in files.items():
            mlflow.log_text(text, artifact)
        for plot in plots:
            mlflow.log_artifact(str(plot), "backtest")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=python_model, signature=signature, pip_requirements=PIP_REQUIREMENTS
        )
    version = mlflow.register_model(info.model_uri, name, tags=version_tags(tags, identity))
    client(mlflow.get_tracking_uri()).set_registered_model_alias(name, CHALLENGER, version.version)
    return ModelRef(name, str(version.version), run.info.run_id, f"models:/{name}/{version.version}")


def _run_description(what: str, definition: PredictionDefinition, tags, identity, result) -> str:
    """A run page's description: the model, its data and back-test dates, the Dagster run (a link when known).
    Both models are fitted in one training, so both runs start when it started."""
    dagster_run, url = tags.get(DAGSTER_RUN_TAG), tags.get(DAGSTER_RUN_URL_TAG)
    by = f" by Dagster run [{dagster_run[:8]}]({url})" if dagster_run and url else ""
    dates = ", ".join(r.as_of_date for r in result.dates)
    return (
        f"{what.capitalize()} model of prediction definition {definition.version}, horizon "
        f"{definition.horizon_days} days, trained{by}. Back-tested out of time at {dates}; training data digest "
        f"`{identity[TRAINING_DATA_DIGEST]}`. Registered with alias `challenger`; the promotion step decides on "
        "`champion` from the back-test (see backtest.md)."
    )


def train_and_register(
    training_set: pd.DataFrame,
    definition: PredictionDefinition,
    definition_yaml: str,
    *,
    seed: int,
    tracking_uri: str,
    artifacts_dir: str | Path,
    tags: dict[str, str],
) -> PredictionOutcome:
    """Back-test, fit and register both models as `challenger` (see the module doc). Below
    `min_training_rows` labelled rows nothing is registered and the champions (if any) keep scoring."""
    if len(training_set) < definition.min_training_rows:
        return PredictionOutcome(
            definition.version,
            len(training_set),
            skipped_reason=f"{len(training_set)} labelled rows < min_training_rows={definition.min_training_rows}",
        )
    columns = tuple(dict.fromkeys([*input_columns(definition), *OUTCOME_COLUMNS]))
    identity_dataset = training_dataset(training_set, columns, SNAPSHOTS_TABLE)
    identity = model_identity(training_set, columns, definition.version, seed, identity_dataset)
    churn_existing = reusable_version(tracking_uri, identity, definition.churn_model_name)
    value_existing = reusable_version(tracking_uri, identity, definition.value_model_name)
    if churn_existing is not None and value_existing is not None:
        churn_ref, _, churn_metrics = reuse_version(
            tracking_uri, churn_existing, tags.get(DAGSTER_RUN_TAG), definition.churn_model_name
        )
        value_ref, params, _ = reuse_version(
            tracking_uri, value_existing, tags.get(DAGSTER_RUN_TAG), definition.value_model_name
        )
        return PredictionOutcome(
            definition.version,
            len(training_set),
            churn=churn_ref,
            value=value_ref,
            value_candidate=params.get("value_candidate"),
            metrics=churn_metrics,
            reused=True,
        )
    started_ms = int(time.time() * 1000)
    result = backtest(training_set, definition, seed=seed)
    final = fit_final(training_set, definition, result.best_value_candidate, seed=seed)
    client(tracking_uri)
    experiment = experiment_id(client(tracking_uri), artifacts_dir, EXPERIMENT)
    common = {
        "definition_version": definition.version,
        "horizon_days": definition.horizon_days,
        "snapshot_dates": ",".join(r.as_of_date for r in result.dates),
        "training_rows": final.training_rows,
        "labelled_rows": len(training_set),
        "seed": seed,
        "value_candidate": final.value_candidate,
    }
    with tempfile.TemporaryDirectory() as tmp:
        plots = backtest_plots(result, Path(tmp))
        report = backtest_markdown(result, definition, training_set, plots)
        files = {"backtest.md": report, "prediction_definition.yaml": definition_yaml}
        example = aggregate_example(training_set, input_columns(definition))
        churn_ref = _log_and_register(
            definition.churn_model_name,
            ChurnModel(final.churn_model, input_columns(definition)),
            example,
            experiment=experiment,
            tags=tags,
            identity=identity,
            dataset=identity_dataset,
            params={
                **common,
                "algorithm": definition.churn_algorithm,
                "calibration": definition.calibration,
                "features": ",".join(input_columns(definition)),
            },
            metrics={**result.churn, **{f"backtest_{k}": v for k, v in result.summary().items()}},
            files=files,
            plots=plots,
            started_ms=started_ms,
            description=_run_description("churn risk", definition, tags, identity, result),
        )
        value_ref = _log_and_register(
            definition.value_model_name,
            ValueModel(final.value_model, input_columns(definition)),
            example,  # both models read the same input columns
            experiment=experiment,
            tags=tags,
            identity=identity,
            dataset=identity_dataset,
            params={**common, "features": ",".join(input_columns(definition))},
            metrics={**result.value_gate_metrics(), **{f"backtest_{k}": v for k, v in result.summary().items()}},
            files=files,
            plots=plots,
            started_ms=started_ms,
            description=_run_description(f"future value ({final.value_candidate})", definition, tags, identity, result),
        )
    return PredictionOutcome(
        definition.version,
        len(training_set),
        churn=churn_ref,
        value=value_ref,
        value_candidate=final.value_candidate,
        metrics={**result.churn, **{f"value_{k}": v for k, v in result.value_gate_metrics().items()}},
    )


@dataclass(frozen=True)
class PromotionDecision:
    name: str
    version: str
    passed: bool
    failures: list[str]
    already_champion: bool = False


def promote(tracking_uri: str, name: str, version: str, gates) -> PromotionDecision:
    """`version` of `name` becomes champion when its logged metrics pass `gates` (ChurnGates / ValueGates),
    and loses challenger; otherwise nothing changes. A version already champion (reused) stays so."""
    mlflow_client = client(tracking_uri)
    run = mlflow_client.get_run(mlflow_client.get_model_version(name, version).run_id)
    failures = gates.failures(dict(run.data.metrics))
    if apply_verdict(tracking_uri, name, version, not failures):
        return PromotionDecision(name, str(version), True, [], already_champion=True)
    return PromotionDecision(name, str(version), not failures, failures)
