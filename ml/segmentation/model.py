"""The segmentation model in MLflow: the pyfunc, its model card and plot, logging and registration.

The registered model is a pyfunc wrapping the scikit-learn pipeline, so scoring needs only the
feature frame (`ml/segmentation/scoring.py`). Real customer rows are never logged: the signature
comes from an aggregate example and the dataset is logged by schema and digest. A new version gets
the alias `challenger`; `ml/segmentation/promotion.py` decides on `champion`.

A version is what the definition version, the seed and the training data make (`model_identity`): before
fitting, `train_and_register` looks for a version with the same identity and reuses it (no fit, no new
version), so a retrain after a crash or a forced re-run leaves the registry and its aliases as they were.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import duckdb
import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.models import infer_signature
from mlflow.types import ColSpec, Schema

from ml.model_registry import (
    CHALLENGER,
    CHAMPION,
    CLASSIC_ML_KIND,
    DAGSTER_RUN_TAG,
    DAGSTER_RUN_URL_TAG,
    DEFINITION_VERSION,
    EXPERIMENT,
    EXPERIMENT_KIND_TAG,
    SEED,
    SEGMENTATION_MODEL,
    TRAINING_DATA_DIGEST,
    TRAINING_DATA_SHA256,
    client,
    mark_reused,
    training_run,
    version_tags,
    versions_with_tags,
)
from ml.segmentation.definition import SegmentDefinition
from ml.segmentation.fallback import fallback_reasons
from ml.segmentation.store import FEATURES_TABLE, write_definition
from ml.segmentation.training import PROFILE_COLUMNS, TrainedSegmentation, train_segmentation
from warehouse.feature_registry import ELIGIBILITY_COLUMNS, load_registry, require_purpose

PIP_REQUIREMENTS = [
    f"scikit-learn=={__import__('sklearn').__version__}",
    f"pandas=={pd.__version__}",
    f"numpy=={np.__version__}",
    f"mlflow=={mlflow.__version__}",
]


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    run_id: str
    model_uri: str


class SegmentationModel(mlflow.pyfunc.PythonModel):
    """pyfunc: feature frame in; segment key / name / cluster / traits and the surrogate rule of the
    customer's leaf (the readable reason) out."""

    def __init__(
        self,
        pipeline,
        names: dict[int, str],
        keys: dict[int, str],
        traits: dict[int, str],
        surrogate=None,
        input_columns: tuple[str, ...] = (),
    ):
        self.pipeline, self.names, self.keys, self.traits, self.surrogate = pipeline, names, keys, traits, surrogate
        self.input_columns = tuple(input_columns)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input[list(self.input_columns)]
        clusters = self.pipeline.predict(frame)
        readable = self.pipeline.named_steps["prepare"].readable(frame)
        rules = self.surrogate.leaf_rules(readable) if self.surrogate is not None else [""] * len(frame)
        return pd.DataFrame(
            {
                "cluster": clusters.astype("int64"),
                "segment_key": [self.keys[int(c)] for c in clusters],
                "segment_name": [self.names[int(c)] for c in clusters],
                "traits": [self.traits[int(c)] for c in clusters],
                "rule": rules,
            }
        )


def experiment_id(mlflow_client: mlflow.MlflowClient, artifacts_dir: str | Path, name: str = EXPERIMENT) -> str:
    """The id of experiment `name`, created with its artifacts in `artifacts_dir/<name>` the first time, and
    marked as classic ML (`EXPERIMENT_KIND_TAG`), also when an older release created it without the mark."""
    exp = mlflow_client.get_experiment_by_name(name)
    if exp is None:
        location = Path(artifacts_dir).resolve() / name
        return mlflow_client.create_experiment(
            name, artifact_location=location.as_uri(), tags={EXPERIMENT_KIND_TAG: CLASSIC_ML_KIND}
        )
    if EXPERIMENT_KIND_TAG not in exp.tags:
        mlflow_client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, CLASSIC_ML_KIND)
    return exp.experiment_id


TRAINING_DATASET_NAME = "marts.customer_features"
SCHEMA_SAMPLE_ROWS = 1000  # rows MLflow infers the column types from (dtypes decide them)
DATASET_DIGEST_CHARS = 16  # MLflow stores a dataset digest of at most 36 characters


class TrainingDataset(PandasDataset):
    """MLflow's pandas dataset with the schema read column by column. MLflow's own schema inference tests every
    cell for null in Python (and its default digest maps `type` over every cell, then hashes only the first
    10,000 rows): about 110 s for 2.7M training rows x 30 columns. The types come from MLflow's inference on
    the first rows (the column dtypes decide them), `required` from a vectorised null test of every row."""

    @cached_property
    def schema(self) -> Schema:
        inferred = infer_signature(self.df.head(SCHEMA_SAMPLE_ROWS)).inputs
        return Schema(
            [ColSpec(spec.type, spec.name, required=not self.df[spec.name].isna().any()) for spec in inferred.inputs]
        )


def frame_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's columns, dtypes, row count and every value, in order."""
    digest = hashlib.sha256(json.dumps([list(frame.columns), [str(t) for t in frame.dtypes], len(frame)]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def training_dataset(
    features: pd.DataFrame, input_columns: tuple[str, ...], name: str = TRAINING_DATASET_NAME
) -> TrainingDataset:
    """The MLflow dataset a training run logs: the model's input columns, by schema and a digest of every row
    (the first 16 hex digits of `frame_sha256`), so a change anywhere gives another digest."""
    frame = features[list(input_columns)]
    digest = frame_sha256(frame)[:DATASET_DIGEST_CHARS]
    source = mlflow.data.from_pandas(frame.head(0), name=name, digest=digest).source  # MLflow's code source
    return TrainingDataset(df=frame, source=source, name=name, digest=digest)


def training_data_sha256(features: pd.DataFrame, input_columns: tuple[str, ...]) -> str:
    """SHA-256 of every row (in order) of every column training reads: the model's inputs and the profile
    columns (the dataset's digest covers the inputs only)."""
    return frame_sha256(features[list(dict.fromkeys([*input_columns, *PROFILE_COLUMNS]))])


def model_identity(
    features: pd.DataFrame, input_columns: tuple[str, ...], definition_version: str, seed: int, dataset=None
) -> dict[str, str]:
    """What makes a model (tags of its run and its version): the training data (the logged dataset's digest
    and the SHA-256 with the profile columns), the definition version (its content is locked by
    `versions.lock`) and the seed. Same identity, same model: training again would only register a copy."""
    dataset = dataset if dataset is not None else training_dataset(features, input_columns)
    return {
        TRAINING_DATA_SHA256: training_data_sha256(features, input_columns),
        TRAINING_DATA_DIGEST: dataset.digest,
        DEFINITION_VERSION: definition_version,
        SEED: str(int(seed)),
    }


def aggregate_example(features: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """One synthetic row of column medians: a valid model input that is nobody's data."""
    cols = list(columns)
    med = features[cols].apply(pd.to_numeric, errors="coerce").astype(float).median().fillna(0.0)
    return pd.DataFrame([med.to_dict()])[cols]


def model_card(trained: TrainedSegmentation, name: str) -> str:
    rows = "\n".join(
        f"| {r.segment_name} | {r.customers:,} | {r.share:.1%} | {r.avg_recency_days:.0f} | {r.avg_frequency:.1f} | "
        f"{r.avg_monetary_base:,.0f} | {trained.traits[int(r.cluster)]} |"
        for r in trained.profile.itertuples()
    )
    rules = "\n".join(f"- **{r.segment_name}**: {r.rule}" for r in trained.profile.itertuples())
    candidates = "\n".join(
        f"| {c.algorithm} | {c.k} | {c.silhouette:.3f} | {'' if c.bic is None else f'{c.bic:,.0f}'} | "
        f"{c.stability_ari:.3f} |"
        for c in trained.candidates
    )
    m = trained.metrics
    return f"""# Model card: {name}

**Purpose**: behavioural customer segmentation for marketing and service playbooks.
**Definition**: behavioural {trained.definition_version} (`ml/segmentation/definitions/behavioural_segmentation.yaml`).
**Algorithm**: {trained.algorithm} with k={trained.k}, chosen among the candidates below (k-means' k by
the definition's rule - gap statistic or silhouette -, the Gaussian mixture's by BIC; then the most stable-enough by \
silhouette) on standardised,
log-transformed features; names from deterministic rules on the cluster centroids.
**Training rows**: {trained.n_rows:,} customers (marts.customer_features); model and surrogate fitted on \
{trained.fit_rows:,} of them. **Seed**: {trained.seed}.
**Features**: {", ".join(trained.features)}.
**Quality**: silhouette {m["silhouette"]:.3f}, Davies-Bouldin {m["davies_bouldin"]:.3f}, bootstrap stability
(ARI) {m["stability_ari"]:.3f}, surrogate fidelity {m["surrogate_fidelity"]:.3f}, \
smallest segment {m["min_segment_share"]:.1%}.

| candidate | k | silhouette | BIC | stability ARI |
|---|---|---|---|---|
{candidates}

| segment | customers | share | avg recency (days) | avg orders | avg revenue (base currency) | traits |
|---|---|---|---|---|---|---|
{rows}

**Readable definitions** (decision-tree surrogate, fidelity {m["surrogate_fidelity"]:.1%} on held-out customers):
{rules}

**Limitations**: clusters describe behaviour, not intent; customers without orders are placed by their
tenure and support activity. No protected attributes are used as features.
"""


def profile_plot_png(trained: TrainedSegmentation, path: Path) -> Path:
    """A heat map of each segment's standardised profile (how it differs from the average customer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prof = trained.profile.set_index("segment_name")[[c for c in trained.profile.columns if c.startswith("avg_")]]
    z = (prof - prof.mean()) / prof.std(ddof=0).replace(0, 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(z.columns) + 3, 0.6 * len(z) + 1.5))
    im = ax.imshow(z.to_numpy(dtype=float), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(z.columns)), [c.removeprefix("avg_") for c in z.columns], rotation=45, ha="right")
    ax.set_yticks(range(len(z)), list(z.index))
    fig.colorbar(im, ax=ax, label="difference from the average segment (std)")
    ax.set_title(f"Segment profiles ({trained.algorithm}, k={trained.k})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def log_segmentation_model(
    trained: TrainedSegmentation,
    *,
    tracking_uri: str,
    artifacts_dir: str | Path,
    registered_model_name: str = SEGMENTATION_MODEL,
    tags: dict[str, str] | None = None,
    training_df_digest_source: pd.DataFrame,
    alias: str = CHALLENGER,
    definition_yaml: str | None = None,
    started_ms: int | None = None,
) -> ModelRef:
    """Log a training run (params, metrics, artifacts, dataset digest, signature), register a version
    and give it `alias` (challenger: it becomes champion only through `ml.segmentation.promotion`).
    The version carries the run's `dagster_run_id` tag (from `tags`), so the run's promotion step
    finds exactly the version it trained, and the model's identity (`model_identity`), so a later
    training of the same data finds it to reuse. The run gets its tags when it is created: a run a
    killed process leaves RUNNING still names its Dagster run (`end_runs_of_dagster_runs` ends it)."""
    mlflow_client = client(tracking_uri)
    experiment = experiment_id(mlflow_client, artifacts_dir)
    dataset = training_dataset(training_df_digest_source, trained.input_columns)
    identity = model_identity(
        training_df_digest_source, trained.input_columns, trained.definition_version, trained.seed, dataset
    )
    example = aggregate_example(training_df_digest_source, trained.input_columns)
    python_model = SegmentationModel(
        trained.pipeline, trained.names, trained.keys, trained.traits, trained.surrogate, trained.input_columns
    )
    signature = infer_signature(example, python_model.predict(None, example))
    tags = tags or {}
    with training_run(
        experiment,
        run_name=f"{registered_model_name} {trained.definition_version} {trained.algorithm} k={trained.k}",
        tags={**tags, **identity},
        started_ms=started_ms or int(time.time() * 1000),
        description=_run_description(trained, registered_model_name, tags, identity),
    ) as run:
        mlflow.log_params(
            {
                "algorithm": trained.algorithm,
                "k": trained.k,
                "k_range": list(trained.k_range),
                "seed": trained.seed,
                "n_rows": trained.n_rows,
                "fit_rows": trained.fit_rows,
                "features": ",".join(trained.features),
                "definition_version": trained.definition_version,
            }
        )
        mlflow.log_metrics({k: v for k, v in trained.metrics.items() if np.isfinite(v)})
        mlflow.log_metrics(
            {f"silhouette_{a}_k{k}": v for a, by_k in trained.silhouette_by_k.items() for k, v in by_k.items()}
        )
        mlflow.log_metrics({f"gap_{a}_k{k}": v for a, by_k in trained.gap_by_k.items() for k, v in by_k.items()})
        mlflow.log_metrics({f"stability_ari_{c.algorithm}": c.stability_ari for c in trained.candidates})
        mlflow.log_input(dataset, context="training")
        mlflow.log_text(trained.profile.to_csv(index=False), "segment_profile.csv")
        mlflow.log_text(model_card(trained, registered_model_name), "model_card.md")
        mlflow.log_text(trained.surrogate.rules_text, "surrogate_rules.txt")
        if definition_yaml:
            mlflow.log_text(definition_yaml, "segment_definition.yaml")
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifact(str(profile_plot_png(trained, Path(tmp) / "segment_profiles.png")))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            signature=signature,
            pip_requirements=PIP_REQUIREMENTS,
        )
    version = mlflow.register_model(info.model_uri, registered_model_name, tags=version_tags(tags, identity))
    mlflow_client.set_registered_model_alias(registered_model_name, alias, version.version)
    return ModelRef(
        registered_model_name,
        str(version.version),
        run.info.run_id,
        f"models:/{registered_model_name}/{version.version}",
    )


def _run_description(trained: TrainedSegmentation, name: str, tags: dict[str, str], identity: dict[str, str]) -> str:
    """The run page's description: what was trained, on what, by which Dagster run (a link when known)."""
    dagster_run = tags.get(DAGSTER_RUN_TAG)
    url = tags.get(DAGSTER_RUN_URL_TAG)
    by = f" by Dagster run [{dagster_run[:8]}]({url})" if dagster_run and url else ""
    return (
        f"`{name}`: behavioural segmentation of definition {trained.definition_version}, {trained.algorithm} with "
        f"k={trained.k}, fitted on {trained.n_rows:,} customers{by}. Training data digest "
        f"`{identity[TRAINING_DATA_DIGEST]}`; seed {trained.seed}. Registered with alias `challenger`; the "
        "promotion step decides on `champion` (see the model card)."
    )


# The model metrics a training run reports besides the registry (the promotion gates read them back).
GATE_METRICS = ("silhouette", "stability_ari", "surrogate_fidelity", "min_segment_share")


@dataclass(frozen=True)
class TrainingOutcome:
    """One training step: a registered challenger (`ref`), or why nothing was trained. `reused`: nothing
    was fitted, `ref` is the version an earlier training of the same data, definition version and seed
    registered (`ref.run_id` its MLflow run, `reused_from_dagster_run_id` the Dagster run that trained it)."""

    definition_version: str
    eligible_customers: int
    fallback_customers: dict[str, int]
    skipped_reason: str | None = None
    ref: ModelRef | None = None
    algorithm: str | None = None
    k: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    reused: bool = False
    reused_from_dagster_run_id: str | None = None


def training_columns(definition: SegmentDefinition) -> list[str]:
    """The columns training reads: eligibility, the definition's inputs and the profile columns.
    Every one must be registered; all but the eligibility columns must be allowed for profiling."""
    registry = load_registry()
    modelled = list(dict.fromkeys([*definition.input_columns, *PROFILE_COLUMNS]))
    require_purpose(modelled, "profiling", registry)
    require_purpose(list(ELIGIBILITY_COLUMNS), "eligibility", registry)
    # registry names are validated identifiers of the dbt model, never user input
    return list(dict.fromkeys([*ELIGIBILITY_COLUMNS, *modelled]))


def read_training_features(con: duckdb.DuckDBPyConnection, definition: SegmentDefinition, run_id: str) -> pd.DataFrame:
    """Only what profiling may use (the definition's features, the profile columns, eligibility) of
    every customer; records the definition as used by `run_id` in `ml.segment_definitions`."""
    columns = training_columns(definition)
    features = con.execute(f"select {', '.join(columns)} from {FEATURES_TABLE} order by customer_id").df()
    write_definition(con, definition, run_id)
    return features


def reusable_version(tracking_uri: str, identity: dict[str, str], name: str = SEGMENTATION_MODEL):
    """The registered version of `name` with this identity (`model_identity`), or None. Several (copies
    registered before reuse existed): the champion, else the challenger, else the newest."""
    versions = [v for v in versions_with_tags(tracking_uri, name, identity) if v.status == "READY"]
    if not versions:
        return None
    aliases = client(tracking_uri).get_registered_model(name).aliases
    for alias in (CHAMPION, CHALLENGER):
        for version in versions:
            if str(version.version) == str(aliases.get(alias)):
                return version
    return versions[-1]


def reuse_version(
    tracking_uri: str, version, dagster_run_id: str | None, name: str = SEGMENTATION_MODEL
) -> tuple[ModelRef, dict[str, str], dict[str, float]]:
    """Make `version` this run's training result without fitting: it is tagged as reused by
    `dagster_run_id` (so the run's promotion step judges it) and, unless it is the champion, gets
    `challenger` as a fresh training would. The champion keeps its alias and loses nothing. Returns its
    ref and its run's params and metrics."""
    mlflow_client = client(tracking_uri)
    number = str(version.version)
    if str(mlflow_client.get_registered_model(name).aliases.get(CHAMPION)) != number:
        mlflow_client.set_registered_model_alias(name, CHALLENGER, number)
    if dagster_run_id:
        mark_reused(tracking_uri, name, number, dagster_run_id)
    run = mlflow_client.get_run(version.run_id)
    ref = ModelRef(name, number, version.run_id, f"models:/{name}/{number}")
    return ref, dict(run.data.params), dict(run.data.metrics)


def train_and_register(
    features: pd.DataFrame,
    definition: SegmentDefinition,
    definition_yaml: str,
    *,
    seed: int,
    tracking_uri: str,
    artifacts_dir: str | Path,
    tags: dict[str, str],
    reuse: bool = True,
) -> TrainingOutcome:
    """Fit the definition's candidates on the eligible customers and register the chosen model as
    `challenger`. Below `min_training_customers` eligible customers nothing is registered: the
    promotion gate has nothing to judge and the champion (if any) keeps scoring.

    First (unless `reuse=False`) the model's identity is computed as logging would (`model_identity`:
    data digests, definition version, seed): when a version with that identity is registered, nothing
    is fitted or registered and that version is the outcome (`reused=True`), tagged as reused by this
    Dagster run (`tags["dagster_run_id"]`)."""
    reasons = fallback_reasons(features, definition)
    eligible = features[reasons.isna()].reset_index(drop=True)
    fallbacks = {str(k): int(v) for k, v in reasons.value_counts().items()}
    if len(eligible) < definition.min_training_customers:
        return TrainingOutcome(
            definition.version,
            len(eligible),
            fallbacks,
            skipped_reason=(
                f"{len(eligible)} eligible customers < min_training_customers={definition.min_training_customers}"
            ),
        )
    if reuse:
        identity = model_identity(eligible, definition.input_columns, definition.version, seed)
        existing = reusable_version(tracking_uri, identity, definition.model_name)
        if existing is not None:
            ref, params, metrics = reuse_version(
                tracking_uri, existing, tags.get(DAGSTER_RUN_TAG), definition.model_name
            )
            return TrainingOutcome(
                definition.version,
                len(eligible),
                fallbacks,
                ref=ref,
                algorithm=params.get("algorithm"),
                k=int(params["k"]) if "k" in params else None,
                metrics={m: float(metrics[m]) for m in GATE_METRICS if m in metrics},
                reused=True,
                reused_from_dagster_run_id=(existing.tags or {}).get(DAGSTER_RUN_TAG),
            )
    started_ms = int(time.time() * 1000)
    trained = train_segmentation(eligible, definition, seed=seed)
    ref = log_segmentation_model(
        trained,
        tracking_uri=tracking_uri,
        artifacts_dir=artifacts_dir,
        tags=tags,
        training_df_digest_source=eligible,
        definition_yaml=definition_yaml,
        registered_model_name=definition.model_name,
        started_ms=started_ms,
    )
    return TrainingOutcome(
        definition.version,
        len(eligible),
        fallbacks,
        ref=ref,
        algorithm=trained.algorithm,
        k=trained.k,
        metrics={m: float(trained.metrics[m]) for m in GATE_METRICS},
    )
