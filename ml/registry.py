"""MLflow: log, register and load the segmentation model (SQLite backend, aliases, never stages).

The registered model is a pyfunc wrapping the scikit-learn pipeline, so scoring needs only the
feature frame: `load_champion()` then `assign_segments()`. Real customer rows are never logged:
the signature comes from an aggregate example and the dataset is logged by schema and digest.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.models import infer_signature

from ml.segment_definitions import PromotionGates
from ml.segmentation import TrainedSegmentation

EXPERIMENT = "customer_segmentation"
CHALLENGER, CHAMPION = "challenger", "champion"
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
        from ml.segmentation import LEGACY_FEATURES, prepare_features

        legacy = not hasattr(self, "input_columns")  # pickled under definition 1.x
        frame = model_input[list(LEGACY_FEATURES if legacy else self.input_columns)]
        clusters = self.pipeline.predict(frame)
        readable = (
            prepare_features(frame, log=False) if legacy else self.pipeline.named_steps["prepare"].readable(frame)
        )
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


def ensure_tracking_db(db_path: Path) -> None:
    """Create the MLflow SQLite schema once (`mlflow db upgrade`), serialised by a file lock:
    a parallel first-time initialisation corrupts the database."""
    db_path = Path(db_path).resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    marker = db_path.with_suffix(".initialised")
    if marker.exists():
        return
    with open(db_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        proc = subprocess.run(
            [str(mlflow_bin), "db", "upgrade", f"sqlite:///{db_path}"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"mlflow db upgrade failed:\n{proc.stderr[-2000:]}")
        marker.touch()


def _experiment_id(client: mlflow.MlflowClient, artifacts_dir: str | Path) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    location = Path(artifacts_dir).resolve() / EXPERIMENT
    return client.create_experiment(EXPERIMENT, artifact_location=location.as_uri())


def aggregate_example(features: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """One synthetic row of column medians: a valid model input that is nobody's data."""
    cols = list(columns)
    med = features[cols].apply(pd.to_numeric, errors="coerce").astype(float).median().fillna(0.0)
    return pd.DataFrame([med.to_dict()])[cols]


def model_card(trained: TrainedSegmentation, name: str) -> str:
    rows = "\n".join(
        f"| {r.segment_name} | {r.customers:,} | {r.share:.1%} | {r.avg_recency_days:.0f} | {r.avg_frequency:.1f} | "
        f"{r.avg_monetary_eur:,.0f} | {trained.traits[int(r.cluster)]} |"
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
**Definition**: behavioural {trained.definition_version} (`ml/definitions/behavioural_segmentation.yaml`).
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

| segment | customers | share | avg recency (days) | avg orders | avg revenue (EUR) | traits |
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
    registered_model_name: str = "customer_segmentation",
    tags: dict[str, str] | None = None,
    training_df_digest_source: pd.DataFrame,
    alias: str = CHALLENGER,
    definition_yaml: str | None = None,
) -> ModelRef:
    """Log a training run (params, metrics, artifacts, dataset digest, signature), register a version
    and give it `alias` (challenger: it becomes champion only through `promote_if_passing`)."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    experiment_id = _experiment_id(client, artifacts_dir)
    dataset = mlflow.data.from_pandas(
        training_df_digest_source[list(trained.input_columns)], name="marts.customer_features"
    )
    example = aggregate_example(training_df_digest_source, trained.input_columns)
    python_model = SegmentationModel(
        trained.pipeline, trained.names, trained.keys, trained.traits, trained.surrogate, trained.input_columns
    )
    signature = infer_signature(example, python_model.predict(None, example))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.set_tags(
            {**(tags or {}), "training_data_digest": dataset.digest, "definition_version": trained.definition_version}
        )
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
    version = mlflow.register_model(info.model_uri, registered_model_name)
    client.set_registered_model_alias(registered_model_name, alias, version.version)
    return ModelRef(
        registered_model_name,
        str(version.version),
        run.info.run_id,
        f"models:/{registered_model_name}/{version.version}",
    )


@dataclass(frozen=True)
class PromotionDecision:
    version: str
    promoted: bool
    failures: list[str]
    metrics: dict[str, float]
    gates: dict[str, float]
    definition_version: str


def promote_if_passing(
    tracking_uri: str, name: str, gates: PromotionGates | None = None, alias: str = CHALLENGER
) -> PromotionDecision:
    """The promotion gate: `name@challenger` becomes `@champion` only if its logged metrics pass
    every gate; otherwise the champion stays what it was. Metrics and (by default) the gates are
    read back from the challenger's MLflow run - the definition it was trained under - so what is
    judged is exactly what was logged."""
    from ml.segment_definitions import parse_definition

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    version = client.get_model_version_by_alias(name, alias)
    run = client.get_run(version.run_id)
    if gates is None:
        text = mlflow.artifacts.load_text(f"runs:/{version.run_id}/segment_definition.yaml")
        gates = parse_definition(yaml.safe_load(text)).gates
    metrics = dict(run.data.metrics)
    failures = gates.failures(metrics, int(run.data.params.get("k", 0)))
    if not failures:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    return PromotionDecision(
        str(version.version),
        not failures,
        failures,
        metrics,
        dict(gates.__dict__),
        run.data.tags.get("definition_version", "unknown"),
    )


def champion_version(tracking_uri: str, name: str = "customer_segmentation", alias: str = "champion") -> str:
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    return str(client.get_model_version_by_alias(name, alias).version)


def load_champion(tracking_uri: str, name: str = "customer_segmentation", alias: str = "champion"):
    """(pyfunc model, version) of `name@alias`."""
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    version = champion_version(tracking_uri, name, alias)
    return mlflow.pyfunc.load_model(f"models:/{name}@{alias}"), version


def load_champion_if_any(tracking_uri: str, name: str = "customer_segmentation"):
    """(pyfunc model, version) of `name@champion`, or None when no version has been promoted yet."""
    try:
        return load_champion(tracking_uri, name)
    except mlflow.exceptions.MlflowException:
        return None


def assign_segments(model, features: pd.DataFrame) -> pd.DataFrame:
    """customer_id, segment_key, segment_name, reason for every customer of `features`."""
    # The model's signature names its input columns, all double; counts arrive as integers from DuckDB.
    columns = model.metadata.get_input_schema().input_names()
    model_input = features[columns].apply(pd.to_numeric, errors="coerce").astype("float64")
    pred = model.predict(model_input)
    return pd.DataFrame(
        {
            "customer_id": features["customer_id"].to_numpy(),
            "segment_key": pred["segment_key"].to_numpy(),
            "segment_name": pred["segment_name"].to_numpy(),
            "reason": ("rule: " + pred["rule"] + "; traits: " + pred["traits"]).to_numpy(),
        }
    )


# Customers scored per `model.predict` call: bounds the memory the per-row strings (segment names, rule
# texts) take while scoring a million customers to one chunk's worth.
SCORING_CHUNK_ROWS = 200_000


def assign_segments_in_chunks(
    model, features: pd.DataFrame, chunk_rows: int = SCORING_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """`assign_segments` over `features` in chunks of `chunk_rows` customers, lazily (one chunk at a time)."""
    for start in range(0, len(features), chunk_rows):
        yield assign_segments(model, features.iloc[start : start + chunk_rows])
