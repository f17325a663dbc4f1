"""kill -9 of the whole process group at each stage; the recovery is a plain `segments run`.

Each scenario starts from a copy of the clean home after delivery 1, adds delivery 2 and starts
`segments run`; when the trigger line is printed (plus a delay), the run's process group is SIGKILLed. The
recovery must end (a dead run must not hold the warehouse pool slot: "hung" otherwise), exit 0, print
`reaped run <id>` for the dead run, and leave a home equal to the clean run of both deliveries
(harness.compare): each delivery applied exactly once, no MLflow run left RUNNING, no new champion.
"""

from __future__ import annotations

import pytest

from tests.faults import harness as h
from tests.faults.conftest import recover

pytestmark = pytest.mark.faults

# (id, trigger line, delay after it in seconds, probe polled after it)
SECOND_DELIVERY_KILLS = [
    ("ingest", h.stage_start("ingest"), 0.3, None),
    # the delivery's rows are committed and the step reported success: the next run must still process them
    ("after-ingest", h.step_ok("[ingest] landing_files"), 0.0, None),
    ("quality", h.stage_start("quality"), 0.3, None),
    ("dbt", h.stage_start("dbt"), 2.0, None),
    ("identity", h.stage_start("identity"), 1.0, None),
    # identity committed (review items, ledger, stable ids): the recovery must not list the items twice
    ("after-identity", h.step_ok("[identity]"), 0.0, None),
    ("training", h.stage_start("training"), 2.0, None),  # fitting: nothing in MLflow yet
    # logging the model: an MLflow run is open (RUNNING); the recovery must not leave it RUNNING
    ("training-mlflow-run-open", h.stage_start("training"), 0.0, h.mlflow_run_open),
    # a champion was promoted by the dead run: the recovery must score with it, not retrain a new one
    ("scoring", h.stage_start("scoring"), 0.5, None),
    ("publish", h.stage_start("publish"), 0.1, None),
]
FIRST_DELIVERY_KILLS = [
    ("dbt", h.stage_start("dbt"), 2.0, None),
    # no champion yet, an MLflow run open
    ("training-mlflow-run-open", h.stage_start("training"), 0.0, h.mlflow_run_open),
]


def _params(kills):
    return [pytest.param(t, d, p, id=i) for i, t, d, p in kills]


@pytest.mark.parametrize(("trigger", "delay", "probe"), _params(SECOND_DELIVERY_KILLS))
def test_kill_during_second_delivery(references, tmp_path, scenario, trigger, delay, probe):
    home = references.after_first(tmp_path / "home")
    references.add_delivery2(home)
    killed = h.run_and_kill(home, trigger, delay=delay, probe=probe)
    scenario.rec.fault = f"kill -9 at '{killed.trigger}' +{delay:g} s (delivery 2)"
    recover(scenario, home, references.fp_second)


@pytest.mark.parametrize(("trigger", "delay", "probe"), _params(FIRST_DELIVERY_KILLS))
def test_kill_during_first_delivery(references, tmp_path, scenario, trigger, delay, probe):
    home = references.fresh_home(tmp_path / "home")
    killed = h.run_and_kill(home, trigger, delay=delay, probe=probe)
    scenario.rec.fault = f"kill -9 at '{killed.trigger}' +{delay:g} s (delivery 1, fresh home)"
    recover(scenario, home, references.fp_first)
