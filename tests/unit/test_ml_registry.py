"""A real MLflow SQLite registry in a temp dir: log, register, alias, load, score."""

import mlflow

from ml.registry import assign_segments, champion_version, ensure_tracking_db, load_champion, log_segmentation_model
from ml.segmentation import train_segmentation
from tests.unit.ml_fixtures import planted_features


def test_log_register_alias_and_score(tmp_path):
    db = tmp_path / "mlflow.db"
    ensure_tracking_db(db)
    ensure_tracking_db(db)  # idempotent
    uri = f"sqlite:///{db}"
    df, _ = planted_features(60)
    trained = train_segmentation(df, k_range=range(3, 6))
    ref = log_segmentation_model(
        trained, tracking_uri=uri, artifacts_dir=tmp_path / "artifacts",
        tags={"dagster_run_id": "r1", "git_sha": "abc", "dbt_manifest_sha": "def"},
        training_df_digest_source=df,
    )
    assert ref.version == "1" and champion_version(uri) == "1"
    client = mlflow.MlflowClient(uri)
    run = client.get_run(ref.run_id)
    assert {"dagster_run_id", "git_sha", "dbt_manifest_sha", "training_data_digest"} <= set(run.data.tags)
    assert run.data.metrics["silhouette"] > 0
    (dataset_input,) = run.inputs.dataset_inputs
    assert "customer_id" not in dataset_input.dataset.schema
    artifacts = {a.path for a in client.list_artifacts(ref.run_id)}
    assert {"model_card.md", "segment_profile.csv"} <= artifacts
    assert (tmp_path / "artifacts").exists()

    model, version = load_champion(uri)
    assert version == "1"
    out = assign_segments(model, df)
    assert len(out) == len(df) and out["customer_id"].is_unique
    assert set(out["segment_name"]) <= set(trained.names.values())
    assert out["reason"].str.startswith("nearest centroid").all()

    ref2 = log_segmentation_model(trained, tracking_uri=uri, artifacts_dir=tmp_path / "artifacts", training_df_digest_source=df)
    assert ref2.version == "2" and champion_version(uri) == "2"
