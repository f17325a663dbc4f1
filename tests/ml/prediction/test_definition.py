"""The prediction definition: the embedded one is valid and locked; bad content is refused with a reason."""

import copy

import pytest
import yaml

from ml.prediction.definition import (
    PREDICTION,
    PredictionDefinitionError,
    load_prediction_definition,
    parse_prediction_definition,
)


@pytest.fixture
def raw():
    return yaml.safe_load(PREDICTION.read_text())


def test_embedded_definition_loads_and_is_locked():
    definition = load_prediction_definition()
    assert definition.horizon_days > 0 and definition.evaluate_last < definition.snapshot_count
    assert definition.churn_model_name == "churn_model" and definition.value_model_name == "value_model"


def test_changed_content_without_a_version_bump_is_refused(raw, tmp_path):
    raw["horizon_days"] = 60
    (tmp_path / "prediction.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "versions.lock").write_text((PREDICTION.parent / "versions.lock").read_text())
    with pytest.raises(PredictionDefinitionError, match="bump the version"):
        load_prediction_definition(tmp_path / "prediction.yaml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(kind="segmentation"), "not a prediction definition"),
        (lambda r: r["features"].append("country"), "not allowed for profiling"),
        (lambda r: r["features"].append("no_such_feature"), "not in the registry"),
        (lambda r: r["snapshots"].update(evaluate_last=4), "must be below snapshots.count"),
        (lambda r: r["churn"].update(algorithm="svm"), "churn.algorithm"),
        (lambda r: r["value"].update(candidates=["prophet"]), "value.candidates"),
        (lambda r: r["value"].update(model_name="churn_model"), "must differ"),
        (lambda r: r["churn"].update(model_name="Churn; drop"), "lowercase"),
        (lambda r: r.update(horizon_days=0), "horizon_days"),
        (lambda r: r["snapshots"].update(max_evaluated_customers=10), "max_evaluated_customers must be in"),
        (lambda r: r.pop("population"), "missing field"),
        (lambda r: r["segments"][0]["when"].update(lifetime_value={"min": 1}), "unknown condition 'lifetime_value'"),
        (lambda r: r["segments"][0]["when"].update(churn_probability={"min": 0.9, "max": 0.1}), "above max"),
        (lambda r: r["segments"][0]["when"].update(churn_probability=0.5), "expected {min: x}"),
        (lambda r: r["segments"][1]["when"].update(rfm_segment={"in": ["rfm_vip"]}), "unknown RFM segment keys"),
        (lambda r: r["segments"][-1].update(when={"churn_probability": {"min": 0}}), "takes every customer left"),
        (lambda r: r["segments"][0].pop("when"), "needs a `when`"),
        (lambda r: r["segments"][1].update(name="Likely to churn: high value!"), "letters, digits"),
        (lambda r: r["segments"][1].update(name="Likely to churn, high value"), "names must differ"),
        (lambda r: r.update(segments=r["segments"][-1:]), "at least two segments"),
    ],
)
def test_bad_definitions_are_refused(raw, change, message):
    bad = copy.deepcopy(raw)
    change(bad)
    with pytest.raises(PredictionDefinitionError, match=message):
        parse_prediction_definition(bad)


def test_evaluated_customers_are_capped_only_when_the_definition_says(raw):
    assert parse_prediction_definition(raw).max_evaluated_customers == raw["snapshots"]["max_evaluated_customers"]
    raw["snapshots"].pop("max_evaluated_customers")
    assert parse_prediction_definition(raw).max_evaluated_customers is None


def test_snapshot_dates_for_dbt_are_validated(raw):
    definition = parse_prediction_definition(raw)
    assert '"snapshot_dates": ["2011-03-01"]' in definition.dbt_settings(("2011-03-01",))
    with pytest.raises(PredictionDefinitionError, match="YYYY-MM-DD"):
        definition.dbt_settings(("2011-03-01'); drop table x; --",))


def test_gates_name_each_failure(raw):
    gates = parse_prediction_definition(raw).churn_gates
    assert (
        gates.failures({"auc": 0.9, "brier": 0.1, "ece": 0.01, "auc_spread": 0.01, "auc_gain_over_recency": 0.1}) == []
    )
    failures = gates.failures({"auc": 0.6, "brier": 0.1, "ece": float("nan"), "auc_spread": 0.01})
    assert [f.split("=")[0] for f in failures] == ["auc", "ece", "auc_gain_over_recency"]
