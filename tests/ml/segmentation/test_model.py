"""A real MLflow SQLite registry in a temp dir: log as challenger, gate, promote, load, score."""

import dataclasses

import mlflow
import numpy as np
import pandas as pd
import pytest

from ml.model_registry import (
    CHALLENGER,
    CHAMPION,
    SEGMENTATION_MODEL,
    ensure_tracking_db,
    load_by_alias,
    version_by_alias,
)
from ml.segmentation.definition import BEHAVIOURAL, load_definition
from ml.segmentation.model import log_segmentation_model, training_dataset
from ml.segmentation.promotion import judge, promote, version_trained_by
from ml.segmentation.scoring import assign_segments, assign_segments_in_chunks
from ml.segmentation.training import train_segmentation
from tests.ml.segmentation.fixtures import planted_features

DEFINITION = load_definition()


@pytest.fixture
def registry(tmp_path):
    db = tmp_path / "mlflow.db"
    ensure_tracking_db(db)
    ensure_tracking_db(db)  # idempotent
    return f"sqlite:///{db}", tmp_path / "artifacts"


def alias(uri, name):
    """The version carrying alias `name` ('' when none does)."""
    version = version_by_alias(uri, SEGMENTATION_MODEL, name)
    return "" if version is None else str(version.version)


def log(trained, df, uri, artifacts, **tags):
    return log_segmentation_model(
        trained,
        tracking_uri=uri,
        artifacts_dir=artifacts,
        training_df_digest_source=df,
        tags={"dagster_run_id": "r1", "git_sha": "abc", "dbt_manifest_sha": "def", **tags},
        definition_yaml=BEHAVIOURAL.read_text(),
    )


def test_log_gate_promote_and_score(registry):
    uri, artifacts = registry
    df, _ = planted_features(200)
    trained = train_segmentation(df, DEFINITION, k_range=range(3, 6), sample_size=1000)
    ref = log(trained, df, uri, artifacts)
    client = mlflow.MlflowClient(uri)
    assert str(client.get_model_version_by_alias("customer_segmentation", "challenger").version) == ref.version == "1"
    assert alias(uri, CHAMPION) == ""  # not champion before the gate
    assert version_trained_by(uri, "r1") == "1" and version_trained_by(uri, "another-run") is None
    run = client.get_run(ref.run_id)
    assert {"dagster_run_id", "git_sha", "dbt_manifest_sha", "training_data_digest", "definition_version"} <= set(
        run.data.tags
    )
    for metric in ("silhouette", "stability_ari", "surrogate_fidelity", "min_segment_share", "davies_bouldin"):
        assert metric in run.data.metrics
    (dataset_input,) = run.inputs.dataset_inputs
    assert "customer_id" not in dataset_input.dataset.schema
    artifacts_logged = {a.path for a in client.list_artifacts(ref.run_id)}
    assert {
        "model_card.md",
        "segment_profile.csv",
        "surrogate_rules.txt",
        "segment_definition.yaml",
        "segment_profiles.png",
    } <= artifacts_logged

    verdict = judge(uri, ref.version)  # reads only
    assert verdict.passed and alias(uri, CHAMPION) == "" and alias(uri, CHALLENGER) == "1"
    decision = promote(uri, ref.version)
    assert decision.passed and decision.failures == [] and alias(uri, CHAMPION) == "1"
    assert alias(uri, CHALLENGER) == ""  # promoted: no longer a challenger
    assert decision.definition_version == DEFINITION.version

    model, version = load_by_alias(uri, SEGMENTATION_MODEL)
    out = assign_segments(model, df)
    assert len(out) == len(df) and out["customer_id"].is_unique
    assert set(out["segment_name"]) <= set(trained.names.values())
    assert out["reason"].str.startswith("rule: ").all()
    # scoring in chunks (as the scoring asset does) places every customer exactly as one call does
    chunks = list(assign_segments_in_chunks(model, df, chunk_rows=37))
    assert len(chunks) == -(-len(df) // 37)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), out)


def test_a_degenerate_challenger_never_becomes_champion(registry):
    uri, artifacts = registry
    df, _ = planted_features(200)
    good = train_segmentation(df, DEFINITION, k_range=range(3, 6), sample_size=1000)
    log(good, df, uri, artifacts)
    assert promote(uri, "1").passed
    # defect: noise with no structure gives unstable, low-quality clusters
    rng = np.random.default_rng(3)
    noise = df.copy()
    for col in noise.columns.drop("customer_id"):
        if pd.api.types.is_numeric_dtype(noise[col]):
            noise[col] = rng.permutation(noise[col].to_numpy())
    bad = train_segmentation(noise, DEFINITION, k_range=range(6, 8), sample_size=1000)
    ref = log(bad, noise, uri, artifacts, dagster_run_id="r2")
    assert version_trained_by(uri, "r2") == ref.version == "2"
    decision = promote(uri, ref.version)
    assert not decision.passed and decision.failures
    # refused: the champion keeps scoring, the refused version stays the challenger
    assert alias(uri, CHAMPION) == "1" and alias(uri, CHALLENGER) == "2"


@pytest.mark.parametrize(
    ("metric", "value", "reason"),
    [
        ("stability_ari", 0.5, "stability_ari"),
        ("min_segment_share", 0.001, "min_segment_share"),
        ("surrogate_fidelity", 0.6, "surrogate_fidelity"),
        ("silhouette", float("nan"), "silhouette"),
    ],
)
def test_each_gate_refuses_its_defect(metric, value, reason):
    good = {"silhouette": 0.3, "stability_ari": 0.95, "min_segment_share": 0.1, "surrogate_fidelity": 0.95}
    gates = DEFINITION.gates
    assert gates.failures(good, 5) == []
    failures = gates.failures({**good, metric: value}, 5)
    assert len(failures) == 1 and failures[0].startswith(reason)
    assert gates.failures(good, 9) and gates.failures(good, 2)
    assert dataclasses.asdict(gates)["k_max"] == 7


def test_training_dataset_schema_is_mlflows_inference_and_the_digest_reads_every_row():
    frame = pd.DataFrame(
        {
            "orders": np.arange(3000, dtype="int64"),
            "revenue": np.linspace(0, 1, 3000),
            "csat": [None if i == 2500 else 4.0 for i in range(3000)],  # a null below the type-sample rows
            "flag": np.arange(3000) % 2 == 0,
        }
    )
    columns = tuple(frame.columns)
    ours = training_dataset(frame, columns)
    assert ours.schema == mlflow.data.from_pandas(frame).schema
    assert [c.required for c in ours.schema.inputs] == [True, True, False, True]
    changed = frame.copy()
    changed.loc[2999, "revenue"] += 1
    assert training_dataset(changed, columns).digest != ours.digest
    assert training_dataset(frame.copy(), columns).digest == ours.digest
