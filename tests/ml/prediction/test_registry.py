"""The churn and value models in a real MLflow registry: registered as challengers with their out-of-time
metrics and lineage, promoted only through their gates, reused (not re-registered) for the same data, and
scored from @champion into the warehouse."""

import dataclasses

import duckdb
import pytest

from ml.model_registry import CHALLENGER, CHAMPION, client, ensure_tracking_db
from ml.prediction import registry
from ml.prediction.definition import PREDICTION, load_prediction_definition
from tests.ml.prediction.test_backtest import planted_training_set


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow")
    ensure_tracking_db(tmp / "mlflow.db")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    definition = load_prediction_definition()
    training_set = planted_training_set(customers=800)
    kwargs = {"seed": 0, "tracking_uri": uri, "artifacts_dir": tmp / "artifacts", "tags": {"dagster_run_id": "run-1"}}
    outcome = registry.train_and_register(training_set, definition, PREDICTION.read_text(), **kwargs)
    again = registry.train_and_register(
        training_set, definition, PREDICTION.read_text(), **{**kwargs, "tags": {"dagster_run_id": "run-2"}}
    )
    return uri, definition, outcome, again


def test_both_models_are_registered_as_challengers_with_metrics_and_lineage(trained):
    uri, definition, outcome, _ = trained
    mlflow_client = client(uri)
    for ref in (outcome.churn, outcome.value):
        assert mlflow_client.get_registered_model(ref.name).aliases == {CHALLENGER: int(ref.version)}
        run = mlflow_client.get_run(ref.run_id)
        for tag in ("dagster_run_id", "training_data_digest", "training_data_sha256", "definition_version", "seed"):
            assert run.data.tags.get(tag), tag
        artifacts = {a.path for a in mlflow_client.list_artifacts(ref.run_id)}
        assert {"backtest.md", "prediction_definition.yaml", "backtest"} <= artifacts
    churn_metrics = mlflow_client.get_run(outcome.churn.run_id).data.metrics
    assert {"auc", "brier", "ece", "auc_spread", "auc_gain_over_recency"} <= set(churn_metrics)
    assert {"spearman", "top_decile_gain_over_last_period"} <= set(
        mlflow_client.get_run(outcome.value.run_id).data.metrics
    )


def test_the_same_data_reuses_the_versions(trained):
    uri, _, outcome, again = trained
    assert again.reused and (again.churn.version, again.value.version) == (outcome.churn.version, outcome.value.version)
    assert len(client(uri).search_model_versions("name = 'churn_model'")) == 1


def test_promotion_goes_through_the_gates(trained):
    uri, definition, outcome, _ = trained
    impossible = dataclasses.replace(definition.churn_gates, min_auc=0.999)
    refused = registry.promote(uri, outcome.churn.name, outcome.churn.version, impossible)
    assert not refused.passed and refused.failures[0].startswith("auc=")
    assert CHAMPION not in client(uri).get_registered_model(outcome.churn.name).aliases
    lenient = dataclasses.replace(definition.churn_gates, min_auc_gain_over_recency=-1.0)  # 800 planted customers
    for ref, gates in ((outcome.churn, lenient), (outcome.value, definition.value_gates)):
        decision = registry.promote(uri, ref.name, ref.version, gates)
        assert decision.passed, decision.failures
        assert client(uri).get_registered_model(ref.name).aliases == {CHAMPION: int(ref.version)}


def test_scoring_uses_the_champions_and_says_who_is_not_predicted(trained, tmp_path):
    from ml.prediction.scoring import score_predictions

    uri, definition, _, _ = trained
    frame = planted_training_set(customers=300, seed=5)
    current = frame[frame["as_of_date"] == frame["as_of_date"].max()].copy()
    current["lineless_order_count"] = 0
    current["has_profiling_consent"] = True
    current["profiling_basis"] = ["objected" if i % 10 == 0 else "consent" for i in range(len(current))]
    columns = ", ".join(
        f"{c}"
        for c in [
            "customer_id",
            "as_of_date",
            *dict.fromkeys(
                [
                    *definition.features,
                    "frequency",
                    "recency_days",
                    "days_since_first_order",
                    "aov_base",
                    "lineless_order_count",
                    "has_profiling_consent",
                    "profiling_basis",
                ]
            ),
        ]
    )
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema marts")
        con.register("current_frame", current)
        con.execute(f"create table marts.customer_features as select {columns} from current_frame")
        result = score_predictions(con, uri, "run-3", definition)
        rows = con.execute(
            "select count(*), count(churn_probability), min(churn_probability) >= 0 and max(churn_probability) <= 1 "
            "from ml.customer_predictions"
        ).fetchone()
    assert rows == (300, 270, True)
    assert result.not_predicted == {"profiling_objection": 30}
