"""MLflow: log, register and load the segmentation model (SQLite backend, aliases, never stages).

The registered model is a pyfunc wrapping the scikit-learn pipeline, so scoring needs only the
feature frame: `load_champion()` then `assign_segments()`. Real customer rows are never logged:
the signature comes from an aggregate example and the dataset is logged by schema and digest.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from ml.segmentation import SEGMENTATION_FEATURES, TrainedSegmentation

EXPERIMENT = "customer_segmentation"
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
    """pyfunc: feature frame in, segment key / name / cluster / traits out."""

    def __init__(self, pipeline, names: dict[int, str], keys: dict[int, str], traits: dict[int, str]):
        self.pipeline, self.names, self.keys, self.traits = pipeline, names, keys, traits

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        clusters = self.pipeline.predict(model_input[list(SEGMENTATION_FEATURES)])
        return pd.DataFrame(
            {
                "cluster": clusters.astype("int64"),
                "segment_key": [self.keys[int(c)] for c in clusters],
                "segment_name": [self.names[int(c)] for c in clusters],
                "traits": [self.traits[int(c)] for c in clusters],
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


def aggregate_example(features: pd.DataFrame) -> pd.DataFrame:
    """One synthetic row of column medians: a valid model input that is nobody's data."""
    cols = list(SEGMENTATION_FEATURES)
    med = features[cols].apply(pd.to_numeric, errors="coerce").astype(float).median().fillna(0.0)
    return pd.DataFrame([med.to_dict()])[cols]


def model_card(trained: TrainedSegmentation, name: str) -> str:
    rows = "\n".join(
        f"| {r.segment_name} | {r.customers:,} | {r.share:.1%} | {r.avg_recency_days:.0f} | {r.avg_frequency:.1f} | "
        f"{r.avg_monetary_eur:,.0f} | {trained.traits[int(r.cluster)]} |"
        for r in trained.profile.itertuples()
    )
    return f"""# Model card: {name}

**Purpose**: behavioural customer segmentation for marketing and service playbooks.
**Algorithm**: k-means (k={trained.k}, chosen by silhouette among {list(trained.k_range)}) on standardised,
log-transformed features; names from deterministic rules on the cluster centroids.
**Training rows**: {trained.n_rows:,} customers (marts.customer_features). **Seed**: {trained.seed}.
**Features**: {", ".join(trained.features)}.
**Quality**: silhouette {trained.metrics["silhouette"]:.3f}, Davies-Bouldin {trained.metrics["davies_bouldin"]:.3f}.

| segment | customers | share | avg recency (days) | avg orders | avg revenue (EUR) | traits |
|---|---|---|---|---|---|---|
{rows}

**Limitations**: clusters describe behaviour, not intent; customers without orders are placed by their
tenure and support activity. No protected attributes are used as features.
"""


def log_segmentation_model(
    trained: TrainedSegmentation,
    *,
    tracking_uri: str,
    artifacts_dir: str | Path,
    registered_model_name: str = "customer_segmentation",
    tags: dict[str, str] | None = None,
    training_df_digest_source: pd.DataFrame,
    alias: str = "champion",
) -> ModelRef:
    """Log a training run (params, metrics, artifacts, dataset digest, signature), register a version, set `alias`."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    experiment_id = _experiment_id(client, artifacts_dir)
    dataset = mlflow.data.from_pandas(
        training_df_digest_source[list(SEGMENTATION_FEATURES)], name="marts.customer_features"
    )
    example = aggregate_example(training_df_digest_source)
    python_model = SegmentationModel(trained.pipeline, trained.names, trained.keys, trained.traits)
    signature = infer_signature(example, python_model.predict(None, example))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.set_tags({**(tags or {}), "training_data_digest": dataset.digest})
        mlflow.log_params(
            {"algorithm": "kmeans", "k": trained.k, "k_range": list(trained.k_range), "seed": trained.seed,
             "n_rows": trained.n_rows, "features": ",".join(trained.features)}
        )
        mlflow.log_metrics({k: v for k, v in trained.metrics.items() if np.isfinite(v)})
        mlflow.log_metrics({f"silhouette_k{k}": v for k, v in trained.silhouette_by_k.items()})
        mlflow.log_input(dataset, context="training")
        mlflow.log_text(trained.profile.to_csv(index=False), "segment_profile.csv")
        mlflow.log_text(model_card(trained, registered_model_name), "model_card.md")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            signature=signature,
            pip_requirements=PIP_REQUIREMENTS,
        )
    version = mlflow.register_model(info.model_uri, registered_model_name)
    client.set_registered_model_alias(registered_model_name, alias, version.version)
    return ModelRef(registered_model_name, str(version.version), run.info.run_id, f"models:/{registered_model_name}/{version.version}")


def champion_version(tracking_uri: str, name: str = "customer_segmentation", alias: str = "champion") -> str:
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    return str(client.get_model_version_by_alias(name, alias).version)


def load_champion(tracking_uri: str, name: str = "customer_segmentation", alias: str = "champion"):
    """(pyfunc model, version) of `name@alias`."""
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    version = champion_version(tracking_uri, name, alias)
    return mlflow.pyfunc.load_model(f"models:/{name}@{alias}"), version


def assign_segments(model, features: pd.DataFrame) -> pd.DataFrame:
    """customer_id, segment_key, segment_name, reason for every customer of `features`."""
    # The signature declares every feature as double; counts arrive as integers from DuckDB.
    model_input = features[list(SEGMENTATION_FEATURES)].apply(pd.to_numeric, errors="coerce").astype("float64")
    pred = model.predict(model_input)
    return pd.DataFrame(
        {
            "customer_id": features["customer_id"].to_numpy(),
            "segment_key": pred["segment_key"].to_numpy(),
            "segment_name": pred["segment_name"].to_numpy(),
            "reason": ("nearest centroid: " + pred["segment_name"] + "; traits: " + pred["traits"]).to_numpy(),
        }
    )
