"""Crash-safe training on a real MLflow SQLite registry: a retrain of the same data reuses the registered
version (aliases untouched), a changed identity registers a new one, MLflow runs of dead Dagster runs are
ended, a failing training ends its run FAILED."""

import dataclasses
import shutil

import mlflow
import pytest
from mlflow.entities import RunStatus

import ml.model_registry as model_registry
import ml.segmentation.model as model_module
from ml.model_registry import (
    CHALLENGER,
    CHAMPION,
    SEGMENTATION_MODEL,
    end_runs_of_dagster_runs,
    ensure_tracking_db,
    versions_with_tags,
)
from ml.segmentation.definition import BEHAVIOURAL, load_definition
from ml.segmentation.model import train_and_register, training_dataset
from ml.segmentation.promotion import promote, version_trained_by
from tests.ml.segmentation.fixtures import planted_features

# The behavioural definition made cheap to fit (one algorithm, few k, small bootstrap); the gates are the
# real ones, read back from the logged YAML.
DEFINITION = dataclasses.replace(
    load_definition(),
    algorithms=("kmeans",),
    k_min=3,
    k_max=6,
    sample_size=1000,
    bootstrap_rounds=3,
    bootstrap_sample_size=500,
    gap_references=2,
    min_training_customers=100,
)
STRICT = dataclasses.replace(DEFINITION.gates, min_silhouette=0.99)  # no model passes


@pytest.fixture(scope="module")
def empty_tracking_db(tmp_path_factory):
    """An initialised, empty MLflow database, made once (creating the schema takes seconds)."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    ensure_tracking_db(db)
    return db


@pytest.fixture
def registry(tmp_path, empty_tracking_db):
    db = tmp_path / "mlflow.db"
    shutil.copyfile(empty_tracking_db, db)
    return f"sqlite:///{db}", tmp_path / "artifacts"


@pytest.fixture
def fits(monkeypatch):
    """How many times a model was fitted."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    real = model_module.train_segmentation
    monkeypatch.setattr(model_module, "train_segmentation", counting)
    return calls


def train(registry, features, run_id, definition=DEFINITION, seed=0, **kwargs):
    uri, artifacts = registry
    return train_and_register(
        features,
        definition,
        BEHAVIOURAL.read_text(),
        seed=seed,
        tracking_uri=uri,
        artifacts_dir=artifacts,
        tags={"dagster_run_id": run_id, "git_sha": "abc", "dbt_manifest_sha": "def"},
        **kwargs,
    )


def aliases(uri) -> dict[str, str]:
    return {a: str(v) for a, v in mlflow.MlflowClient(uri).get_registered_model(SEGMENTATION_MODEL).aliases.items()}


def versions(uri) -> list[str]:
    found = mlflow.MlflowClient(uri).search_model_versions(f"name = '{SEGMENTATION_MODEL}'")
    return sorted((str(v.version) for v in found), key=int)


def test_the_same_data_and_definition_reuse_the_registered_version(registry, fits):
    uri, _ = registry
    df, _ = planted_features(100)
    first = train(registry, df, "run-a")
    assert not first.reused and first.ref.version == "1" and len(fits) == 1
    assert promote(uri, version_trained_by(uri, "run-a")).passed
    assert aliases(uri) == {CHAMPION: "1"}

    again = train(registry, df.copy(), "run-b")  # a forced re-run / the recovery of a crashed run
    assert again.reused and len(fits) == 1  # nothing fitted
    assert aliases(uri) == {CHAMPION: "1"}  # the champion does not become challenger too
    assert again.ref == first.ref  # same version, same MLflow run
    assert again.reused_from_dagster_run_id == "run-a"
    assert (again.algorithm, again.k, again.metrics) == (first.algorithm, first.k, first.metrics)
    assert versions(uri) == ["1"]
    # the new run's promotion step finds the version it reused; the first run still finds it too
    assert version_trained_by(uri, "run-b") == "1" == version_trained_by(uri, "run-a")
    assert version_trained_by(uri, "run-c") is None
    decision = promote(uri, "1")
    assert decision.passed and decision.already_champion and decision.failures == []
    assert aliases(uri) == {CHAMPION: "1"}  # no challenger put on the champion, nothing moved

    # a promotion interrupted between setting champion and removing challenger is completed
    mlflow.MlflowClient(uri).set_registered_model_alias(SEGMENTATION_MODEL, CHALLENGER, "1")
    assert promote(uri, "1").already_champion and aliases(uri) == {CHAMPION: "1"}

    # reuse=False (a deliberate retrain) fits and registers
    forced = train(registry, df, "run-d", reuse=False)
    assert not forced.reused and forced.ref.version == "2" and len(fits) == 2


def test_a_crash_during_scoring_then_recovery_keeps_every_alias_where_it_was(registry, fits):
    uri, _ = registry
    old, _ = planted_features(100, seed=1)
    assert promote(uri, train(registry, old, "yesterday").ref.version).passed
    today, _ = planted_features(100, seed=2)
    trained = train(registry, today, "today")
    assert promote(uri, version_trained_by(uri, "today")).passed  # then the process is killed while scoring
    before = aliases(uri)
    assert before == {CHAMPION: trained.ref.version}

    recovery = train(registry, today, "today-recovery")
    assert aliases(uri) == before
    decision = promote(uri, version_trained_by(uri, "today-recovery"))
    assert recovery.reused and decision.passed and decision.already_champion
    assert aliases(uri) == before and versions(uri) == ["1", "2"] and len(fits) == 2


def test_a_reused_challenger_that_failed_its_gates_stays_challenger(registry, fits):
    uri, _ = registry
    old, _ = planted_features(100, seed=1)
    assert promote(uri, train(registry, old, "yesterday").ref.version).passed
    today, _ = planted_features(100, seed=2)
    train(registry, today, "today")
    refused = promote(uri, version_trained_by(uri, "today"), gates=STRICT)
    assert not refused.passed and aliases(uri) == {CHAMPION: "1", CHALLENGER: "2"}

    assert train(registry, today, "today-again").reused
    again = promote(uri, version_trained_by(uri, "today-again"), gates=STRICT)
    assert (again.version, again.passed, again.failures) == ("2", False, refused.failures)
    assert aliases(uri) == {CHAMPION: "1", CHALLENGER: "2"} and len(fits) == 2


def test_changed_data_beyond_mlflows_digest_rows_is_a_new_version(registry, fits):
    uri, _ = registry
    df, _ = planted_features(2100)  # 10,500 rows: MLflow's default dataset digest reads the first 10,000
    first = train(registry, df, "run-a")
    changed = df.copy()
    changed.loc[len(df) - 1, "recency_days"] += 1
    columns = DEFINITION.input_columns
    assert training_dataset(changed, columns).digest != training_dataset(df, columns).digest
    second = train(registry, changed, "run-b")
    assert not second.reused and second.ref.version == "2" and len(fits) == 2
    assert version_trained_by(uri, "run-b") == "2" and version_trained_by(uri, "run-a") == first.ref.version
    assert aliases(uri) == {CHALLENGER: "2"}


@pytest.mark.parametrize(
    "change",
    [
        {"definition": dataclasses.replace(DEFINITION, version="2.0.1")},
        {"seed": 1},
    ],
    ids=["definition_version", "seed"],
)
def test_another_definition_or_seed_is_a_new_version(registry, fits, change):
    uri, _ = registry
    df, _ = planted_features(100)
    train(registry, df, "run-a")
    other = train(registry, df, "run-b", **change)
    assert not other.reused and other.ref.version == "2" and len(fits) == 2
    assert train(registry, df, "run-c", **change).ref.version == "2"  # and that one is reused in turn
    assert len(fits) == 2


def test_a_training_that_raises_ends_its_mlflow_run_failed_and_registers_nothing(registry, monkeypatch):
    uri, _ = registry
    df, _ = planted_features(100)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(mlflow.pyfunc, "log_model", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            train(registry, df, "run-a")
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(SEGMENTATION_MODEL).experiment_id])
    assert run.info.status == "FAILED" and run.info.end_time is not None
    assert run.data.tags["dagster_run_id"] == "run-a"
    assert client.search_model_versions(f"name = '{SEGMENTATION_MODEL}'") == []
    # the retry trains and registers: a failed run is never reused
    retry = train(registry, df, "run-b")
    assert not retry.reused and retry.ref.version == "1"


def test_mlflow_runs_of_dead_dagster_runs_are_ended(registry):
    uri, _ = registry
    client = mlflow.MlflowClient(uri)
    other_experiment = client.create_experiment("another")

    def run(dagster_run_id=None, experiment_id="0", status=None):
        tags = {"dagster_run_id": dagster_run_id} if dagster_run_id else {}
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        if status == "SCHEDULED":
            client.update_run(run_id, status)
        elif status:
            client.set_terminated(run_id, status)
        return run_id

    dead_running = run("dead-1")
    dead_scheduled = run("dead-1", status="SCHEDULED")
    dead_elsewhere = run("dead-2", other_experiment)
    dead_finished = run("dead-1", status="FINISHED")
    alive = run("alive")
    untagged = run()

    assert end_runs_of_dagster_runs(uri, []) == []
    ended = end_runs_of_dagster_runs(uri, iter(["dead-1", "dead-2", "never-ran"]))
    assert sorted(ended) == sorted([dead_running, dead_scheduled, dead_elsewhere])
    for run_id in ended:
        info = client.get_run(run_id).info
        assert info.status == RunStatus.to_string(RunStatus.KILLED) and info.end_time is not None
    assert client.get_run(dead_finished).info.status == "FINISHED"
    assert client.get_run(alive).info.status == "RUNNING" and client.get_run(untagged).info.status == "RUNNING"
    assert client.get_run(alive).info.end_time is None
    assert end_runs_of_dagster_runs(uri, ["dead-1", "dead-2"]) == []  # nothing left to end

    assert end_runs_of_dagster_runs(uri, ["alive"], status="FAILED") == [alive]
    assert client.get_run(alive).info.status == "FAILED"
    with pytest.raises(ValueError, match="status"):
        end_runs_of_dagster_runs(uri, ["dead-1"], status="RUNNING")


def test_no_ids_reads_nothing(monkeypatch):
    def no_store(*args):
        raise AssertionError("the tracking store was opened")

    monkeypatch.setattr(model_registry, "client", no_store)
    assert end_runs_of_dagster_runs("sqlite:///unused.db", []) == []


def test_search_values_are_refused_unless_plain(registry):
    uri, _ = registry
    with pytest.raises(ValueError):
        versions_with_tags(uri, SEGMENTATION_MODEL, {"definition_version": "1' or name != '"})
    with pytest.raises(ValueError):
        versions_with_tags(uri, SEGMENTATION_MODEL, {"bad key`": "x"})
