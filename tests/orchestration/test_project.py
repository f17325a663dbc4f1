"""A user project outside the repo: scaffold, settings, version lock, the definition in use, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ml.segmentation.definition import load_definition
from ml.versioning import VersionLockError, read_lock
from orchestration.cli import main
from orchestration.cli.run import RunRefused, run_pipeline
from orchestration.project import (
    EXAMPLES_DIR,
    ProjectError,
    definition_in_use,
    embedded_project,
    init_project,
    load_project,
    lock_project,
    remember_definition,
)
from orchestration.settings import get_settings
from tests.integration.conftest import PIPELINE_ENV


@pytest.fixture
def env(tmp_path, monkeypatch):
    for var in PIPELINE_ENV:
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def bump(path: Path, version: str, **changes) -> None:
    raw = yaml.safe_load(path.read_text())
    raw.update(version=version, **changes)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_init_scaffolds_a_locked_project_that_settings_select(env, monkeypatch):
    project = init_project(env / "shop")
    assert project.name == "shop" and not project.embedded
    assert {p.name for p in project.root.iterdir()} >= {"segments.yaml", "definitions", "playbooks.yaml", "mappings"}
    assert set(read_lock(project.lock)) == {"behavioural", "prediction", "playbooks"}
    assert load_definition(project.definition, project.lock).name == "behavioural"
    monkeypatch.setenv("SEGMENTS_PROJECT", str(project.root))
    settings = get_settings()
    # the project's folders are the defaults of home, landing and identity
    assert settings.home == project.root / ".segments"
    assert settings.landing_dir == project.root / "landing"
    assert settings.identity_files_dir == project.root / "identity"
    assert settings.project.name == "shop"
    monkeypatch.setenv("SEGMENTS_HOME", str(env / "elsewhere"))
    assert get_settings().home == env / "elsewhere"  # a variable wins over the project
    with pytest.raises(ProjectError, match="is not empty"):
        init_project(project.root)


def test_without_a_project_the_embedded_demo_requires_consent_everywhere(env):
    project = get_settings().project
    assert project.embedded and project.name == "demo"
    assert project.basis_rows() == [
        ("profiling", "*", "consent"),
        ("marketing_email", "*", "consent"),
        ("marketing_sms", "*", "consent"),
    ]
    assert project == embedded_project()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: Shop\n", "name 'Shop' must be lowercase"),
        ("name: shop\nlandng: x\n", r"unknown settings \['landng'\]"),
        ("name: shop\nlawful_basis: {profiling: opt_out}\n", "lawful_basis.profiling.default is 'opt_out'"),
        ("name: shop\nlawful_basis: {profiling: {default: consent, shop: contract}}\n", "unknown source systems"),
        ("name: shop\nlawful_basis: {advertising: consent}\n", "lawful_basis must map purposes"),
        ("name: [shop\n", "not valid YAML"),
        ("name: shop\nbase_currency: euro\n", "base_currency must be an ISO 4217 code such as EUR, got 'euro'"),
        ("name: shop\ntime_zone: europe/berlin\n", "not a known time zone .did you mean Europe/Berlin"),
        ('name: shop\ntime_zone: "UTC\'; drop table x"\n', "is not a known time zone"),
    ],
)
def test_unusable_settings_are_refused_naming_the_key(env, text, message):
    (env / "p").mkdir()
    (env / "p" / "segments.yaml").write_text(text)
    with pytest.raises(ProjectError, match=message):
        load_project(env / "p")


def test_lawful_basis_per_source_becomes_rows(env):
    project = init_project(env / "p")
    settings = project.root / "segments.yaml"
    settings.write_text(
        settings.read_text().replace(
            "  profiling: consent", "  profiling: {default: legitimate_interest, erp: contract}"
        )
    )
    rows = load_project(project.root).basis_rows()
    assert ("profiling", "*", "legitimate_interest") in rows and ("profiling", "erp", "contract") in rows


def test_lock_records_new_versions_and_refuses_a_changed_release(env):
    project = init_project(env / "p")
    assert lock_project(project) == []  # init locked everything
    definition = project.definition
    bump(definition, "2.1.0", description="changed without a new version")
    with pytest.raises(VersionLockError, match="released with other content: bump its version"):
        lock_project(project)
    with pytest.raises(Exception, match="segments definitions lock"):  # a run names the command to run
        load_definition(definition, project.lock)
    bump(definition, "2.2.0")
    assert lock_project(project) == ["behavioural 2.2.0"]
    assert load_definition(definition, project.lock).version == "2.2.0"


def test_a_run_refuses_an_unlocked_definition_with_the_command_to_run(env, monkeypatch, capsys):
    project = init_project(env / "p")
    (project.root / "landing").mkdir(exist_ok=True)
    bump(project.definition, "2.2.0")
    monkeypatch.setenv("SEGMENTS_PROJECT", str(project.root))
    assert main(["run"]) == 2
    assert "is not in versions.lock: when you release it, run `segments definitions lock`" in capsys.readouterr().err
    assert not (project.root / ".segments" / "warehouse.duckdb").exists()  # nothing ran
    with pytest.raises(RunRefused, match="playbooks"):
        bump(project.definition, "2.1.0")  # back to the released content
        project.definition.write_text(yaml.safe_dump(yaml.safe_load(project.definition.read_text())))
        bump(project.playbooks, "1.1.0", holdout_share=0.2)
        run_pipeline(get_settings())


def test_a_chosen_definition_is_remembered_until_the_project_declares_another(env):
    project = init_project(env / "p")
    state = env / "home" / "definition_in_use.json"
    assert definition_in_use(project, state).source == "project"
    other = project.root / "definitions" / "other.yaml"
    shutil.copyfile(project.definition, other)
    remember_definition(project, state, other)
    assert definition_in_use(project, state).path == other.resolve()
    assert definition_in_use(project, state).source == "remembered"
    settings = project.root / "segments.yaml"
    settings.write_text(settings.read_text().replace("definitions/behavioural.yaml", "definitions/other.yaml"))
    changed = load_project(project.root)
    assert definition_in_use(changed, state).source == "project"  # the user's declaration wins again


def test_a_public_data_definition_registers_under_its_own_model_name():
    public = load_definition(Path("ml/segmentation/definitions/behavioural_public_data.yaml"))
    assert public.model_name == "customer_segmentation_public_data"
    assert load_definition().model_name == "customer_segmentation"


@pytest.mark.parametrize("example", ["online_retail_ii", "one_orders_export"])
def test_the_examples_are_locked_projects(env, example):
    project = init_project(env / example, example=example)
    assert lock_project(project) == []  # their locks record every version they ship
    definition = load_definition(project.definition, project.lock)
    assert definition.require_lawful_basis and definition.model_name != "customer_segmentation"
    assert project.lawful_basis["profiling"].default != "consent"
    assert (EXAMPLES_DIR / example / "mappings").is_dir()


def test_init_refuses_an_unknown_example(env):
    with pytest.raises(ProjectError, match="unknown example 'nope'; examples: one_orders_export, online_retail_ii"):
        init_project(env / "x", example="nope")
