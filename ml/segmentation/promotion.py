"""The promotion gate: a trained version becomes `champion` only when it passes its definition's gates.

The gates (k range, silhouette, bootstrap stability, smallest segment share, surrogate fidelity) and
the metrics are read back from the version's MLflow run - the definition it was trained under - so
what is judged is exactly what was logged. `judge()` only reads; `promote()` moves the `champion`
alias to a passing version and removes `challenger` from it, so the registry says at a glance which
version scores and whether a newer one is waiting. Promoting the champion again (a run that reused
it: `ml.segmentation.model.train_and_register`) changes nothing and reports passed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import mlflow
import yaml

from ml.model_registry import SEGMENTATION_MODEL, apply_verdict, client, versions_of_run
from ml.segmentation.definition import PromotionGates, parse_definition


@dataclass(frozen=True)
class PromotionDecision:
    """The verdict of the gates on one model version (`passed`: every gate holds)."""

    version: str
    passed: bool
    failures: list[str]
    metrics: dict[str, float]
    gates: dict[str, float]
    definition_version: str
    already_champion: bool = False  # promote() found the version already champion: nothing changed


def judge(tracking_uri: str, version: str, name: str = SEGMENTATION_MODEL, gates: PromotionGates | None = None):
    """The gates' verdict on `name` version `version`, from its logged metrics (registry untouched).
    `gates` overrides the ones of the definition the version was trained under."""
    mlflow_client = client(tracking_uri)
    model_version = mlflow_client.get_model_version(name, version)
    run = mlflow_client.get_run(model_version.run_id)
    if gates is None:
        text = mlflow.artifacts.load_text(f"runs:/{model_version.run_id}/segment_definition.yaml")
        gates = parse_definition(yaml.safe_load(text)).gates
    metrics = dict(run.data.metrics)
    failures = gates.failures(metrics, int(run.data.params.get("k", 0)))
    return PromotionDecision(
        str(model_version.version),
        not failures,
        failures,
        metrics,
        dict(gates.__dict__),
        run.data.tags.get("definition_version", "unknown"),
    )


def promote(
    tracking_uri: str, version: str, name: str = SEGMENTATION_MODEL, gates: PromotionGates | None = None
) -> PromotionDecision:
    """Judge `version`; when it passes, it becomes `champion` and loses `challenger`. When it fails,
    nothing changes: the champion (if any) keeps scoring and the version stays `challenger`.
    A version that already is champion (reused by a retrain of the same data) stays champion and is
    reported passed (`already_champion`), whatever `gates` say; only a `challenger` alias left on it by
    an interrupted promotion is removed."""
    decision = judge(tracking_uri, version, name, gates)
    if apply_verdict(tracking_uri, name, decision.version, decision.passed):
        return replace(decision, passed=True, failures=[], already_champion=True)
    return decision


def version_trained_by(tracking_uri: str, dagster_run_id: str, name: str = SEGMENTATION_MODEL) -> str | None:
    """The newest version of `name` a Dagster run registered or reused (a retrain of data an earlier
    run trained on), or None (training was skipped)."""
    versions = versions_of_run(tracking_uri, name, dagster_run_id)
    return str(versions[-1].version) if versions else None
