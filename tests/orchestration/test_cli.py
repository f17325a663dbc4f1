"""The command line without a pipeline run: parsing, refused inputs and exit codes, the wiring of
`segments run` to `run_pipeline`, and how the progress names a step (on a two-step toy job)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
import pytest

import orchestration.cli as cli
from ml.segmentation.definition import DEFINITIONS_DIR
from orchestration.cli import build_parser, main
from orchestration.cli import run as run_module
from orchestration.keys import BUILD_JOB, stage
from tests.integration.conftest import PIPELINE_ENV

COMMANDS = (
    "init",
    "definitions",
    "map",
    "generate",
    "docs",
    "run",
    "backtest",
    "import",
    "quarantine",
    "explain",
    "report",
    "identity",
    "bench",
    "ui",
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A SEGMENTS_HOME that does not exist yet (a refused command must not create it); every pipeline
    variable reset, and restored after the test (a command may pin them in the environment)."""
    for var in PIPELINE_ENV:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("SEGMENTS_HOME", str(home))
    return home


def test_every_command_is_a_sub_command_and_in_the_help():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    assert tuple(sub.choices) == COMMANDS
    for command in COMMANDS:
        assert f"segments {command}" in cli.__doc__, command


@pytest.mark.parametrize(
    "argv",
    [[], ["nope"], ["bench"], ["bench", "nope"], ["import"], ["generate"], ["run", "--nope"]],
    ids=["no command", "unknown command", "bench alone", "unknown bench", "import alone", "no --out", "bad option"],
)
def test_unusable_command_lines_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage: segments" in capsys.readouterr().err


def test_run_refuses_a_missing_landing_folder(home, tmp_path, capsys):
    assert main(["run", "--landing", str(tmp_path / "nowhere")]) == 2
    assert f"error: landing folder {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    assert not home.exists()


def test_run_refuses_a_missing_definition_file(home, tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    assert main(["run", "--landing", str(tmp_path), "--definition", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"error: segment definition {missing} does not exist"
    assert not home.exists()


def test_run_refuses_an_invalid_definition(home, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: one\n")
    assert main(["run", "--landing", str(tmp_path), "--definition", str(bad)]) == 2
    assert f"error: segment definition {bad}: " in capsys.readouterr().err
    assert not home.exists()


def test_readers_need_a_warehouse(home, capsys):
    assert main(["quarantine"]) == 2
    assert main(["docs"]) == 2
    err = capsys.readouterr().err
    assert err.count(f"no warehouse at {home / 'warehouse.duckdb'}: run `segments run` first") == 2


def test_identity_review_lists_what_waits_and_decide_records_a_pair(home, capsys):
    import duckdb

    from ml.identity.config import IdentityConfig
    from ml.identity.resolve import resolve_warehouse
    from tests.ml.identity.fixtures import create_candidates
    from tests.ml.identity.test_review_queue import candidates

    home.mkdir()
    warehouse = home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema intermediate")
        create_candidates(con, "intermediate.int_identity_candidates", candidates())
    resolve_warehouse(warehouse, IdentityConfig(max_cluster_size=5), "run-1", home / "identity")
    assert main(["identity", "review"]) == 0
    listed = capsys.readouterr().out
    assert "reference_conflict" in listed and "3 item(s) waiting" in listed
    with duckdb.connect(str(warehouse), read_only=True) as con:
        pair = con.execute("select review_key from identity.review_queue where kind = 'reference_conflict'").fetchone()[
            0
        ]
        group = con.execute("select review_key from identity.review_queue where kind = 'shared_email'").fetchone()[0]
    assert main(["identity", "decide", pair, "--never-link", "--by", "anna.k", "--reason", "other person"]) == 0
    overrides = (home / "identity" / "overrides.csv").read_text().splitlines()
    assert overrides[1].startswith("erp:R001,crm:C2,never_link,anna.k,other person,")
    # an item of more than two records, no decision or an unknown key: refused, nothing written
    assert main(["identity", "decide", group, "--link", "--by", "x", "--reason", "y"]) == 2
    assert main(["identity", "decide", "crm:C1", "crm:C2", "--by", "x", "--reason", "y"]) == 2
    assert main(["identity", "decide", "nope", "--link", "--by", "x", "--reason", "y"]) == 2
    assert len((home / "identity" / "overrides.csv").read_text().splitlines()) == 2
    # the next run applies it: the item shows as decided
    resolve_warehouse(warehouse, IdentityConfig(max_cluster_size=5), "run-2", home / "identity")
    capsys.readouterr()
    assert main(["identity", "review", "--all"]) == 0
    assert "decided: never_link by anna.k" in capsys.readouterr().out


def test_bench_pipeline_refuses_scales_that_are_no_integers(capsys):
    assert main(["bench", "pipeline", "--scales", "10000,many"]) == 2
    assert "--scales: expected comma-separated integers, got '10000,many'" in capsys.readouterr().err


@dataclasses.dataclass
class FakeResult:
    success: bool
    run_id: str = "run-1"
    all_events: tuple = ()


@pytest.mark.parametrize("success", [True, False])
def test_run_wraps_run_pipeline(home, tmp_path, monkeypatch, capsys, success):
    """`segments run --definition D`: the build job on the resolved landing folder, with the definition
    and forced (a definition given explicitly is trained even on unchanged data); exit code 0 or 1 from
    the run, then the summary."""
    calls, summaries = [], []

    def fake_execute_job(settings, job_name, *, definition=None, force=False, wait=False, out=None):
        calls.append((settings, job_name, definition, force))
        return run_module.RunOutcome(
            settings, job_name, FakeResult(success), tmp_path / "run.log", 1.0, {}, {}, nothing_new=False
        )

    monkeypatch.setattr(run_module, "execute_job", fake_execute_job)
    monkeypatch.setattr(run_module, "print_summary", lambda s, r, warnings: summaries.append(r))
    monkeypatch.setattr(run_module, "run_warnings", lambda s, r: [])
    definition = str(DEFINITIONS_DIR / "behavioural_public_data.yaml")
    assert main(["run", "--landing", str(tmp_path), "--definition", definition]) == (0 if success else 1)
    ((settings, job_name, passed, force),) = calls
    assert (settings.home, settings.landing_dir, job_name) == (home.resolve(), tmp_path.resolve(), BUILD_JOB)
    assert passed == Path(definition) and force
    assert len(summaries) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"SEGMENTS_HOME  {home.resolve()}\nlanding        {tmp_path.resolve()}\n")
    assert f"run {'succeeded' if success else 'FAILED'} in 1.0 s (full log: {tmp_path / 'run.log'})" in out


def test_run_on_a_home_another_run_holds_exits_3_naming_the_holder(home, tmp_path, capsys):
    from orchestration.runs import home_lock

    with home_lock(home) as holder:
        assert main(["run", "--landing", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: another run holds SEGMENTS_HOME {home.resolve()} (pid {holder.pid}")
    assert "--wait" in err


def toy_job() -> dg.JobDefinition:
    @dg.asset(key=["crm", "customers"], op_tags=stage("ingest"))
    def customers() -> None:
        return None

    @dg.asset_check(asset=customers, op_tags=stage("quality"))
    def new_rows_pass_expectation_suite() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN)

    defs = dg.Definitions(
        assets=[customers], asset_checks=[new_rows_pass_expectation_suite], jobs=[dg.define_asset_job("toy")]
    )
    return defs.resolve_job_def("toy")


def test_progress_names_each_step_by_its_stage_and_a_check_by_its_table(tmp_path):
    job = toy_job()
    labels = run_module.step_labels(job)
    assert labels == {
        "crm__customers": "[ingest] crm__customers",
        "crm__customers_new_rows_pass_expectation_suite": "[quality] crm.customers / new_rows_pass_expectation_suite",
    }
    lines = []

    class Out:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance)
        progress = run_module._Progress(instance, result.run_id, labels, Out())
        progress.stop.set()
        progress.run()  # drains the finished run's events once
    printed = "".join(lines).splitlines()
    assert "  ... [ingest] crm__customers" in printed
    assert any(line.startswith("  ok  [ingest] crm__customers (") for line in printed)
    assert "      check warn: crm/customers / new_rows_pass_expectation_suite" in printed
    assert set(progress.seconds) == set(labels)


def test_definitions_show_names_the_definitions_in_use_and_the_predictive_segments(home, capsys):
    from ml.prediction.definition import load_prediction_definition

    assert main(["definitions", "show"]) == 0
    out = capsys.readouterr().out
    prediction = load_prediction_definition()
    assert f"{prediction.name} {prediction.version}: churn within {prediction.horizon_days} days" in out
    assert f"predictive segments, first match: {prediction.segments[0].name}; " in out
    assert not home.exists()  # showing creates nothing


def test_the_landing_of_the_last_run_is_the_default_of_later_runs_and_of_the_ui(home, tmp_path, monkeypatch):
    """`segments run --landing DIR` remembers DIR for this home: a later plain run, and the launchpad and schedule
    of the UI (which read `get_settings()`), use it; SEGMENTS_LANDING still wins, and a home without the memory
    uses $SEGMENTS_HOME/landing."""
    from orchestration.settings import get_settings, remember_landing

    assert get_settings().landing_dir == home / "landing" and not get_settings().landing_remembered
    home.mkdir()
    remember_landing(get_settings(), tmp_path / "deliveries")
    assert get_settings().landing_dir == tmp_path / "deliveries" and get_settings().landing_remembered
    monkeypatch.setenv("SEGMENTS_LANDING", str(tmp_path / "explicit"))
    assert get_settings().landing_dir == tmp_path / "explicit"
