"""A user project: the user's definitions, playbooks, source mappings and settings, outside the repo.

`segments init DIR` scaffolds one; `SEGMENTS_PROJECT=DIR` (or `segments --project DIR ...`) selects it;
without either the embedded demo project (the files under `ml/segmentation/definitions/`) is used. A
project is one folder:

    segments.yaml     settings (below)
    definitions/      segment definitions (YAML, versioned); `definition:` names the one in use,
                      `prediction:` the churn and value models' definition (default: the embedded one)
    playbooks.yaml    what operations does per segment and transition
    versions.lock     content digest of every released definition and playbook version, written by
                      `segments definitions lock` (never by hand); an unlocked change is refused
    mappings/         source mappings: how the user's export files become landing tables
    identity/         labels.csv (labelled pairs) and overrides.csv (link / never-link decisions)
    landing/          deliveries (default; SEGMENTS_LANDING overrides)
    .segments/        SEGMENTS_HOME: warehouse, MLflow, serving copy, run logs (default; SEGMENTS_HOME
                      overrides); keep it out of version control

`segments.yaml` holds, besides the paths, the source `time_zone` of timestamps without an offset
(landing files and mappings that name none), the `base_currency` every amount is converted to, and
the **lawful basis** of each purpose (`profiling`, `marketing_email`, `marketing_sms`): `consent` (only
customers with a granted consent row), `legitimate_interest` or `contract` (every customer, unless
their latest consent row for the purpose is a refusal or withdrawal: an objection always wins). A
purpose may name a basis per source system (`{default: consent, erp: contract}`): a customer known to
a source configured with a basis other than consent has that basis.

Secrets never go in the project: they come from the environment (`.env.example` lists them).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestration.settings import PROJECT_ROOT
from warehouse.connections import OFFLINE_CONFIG
from warehouse.contracts import CURRENCY_CODE, DEFAULT_BASE_CURRENCY, TableContract, contracts_for
from warehouse.lawful_bases import BASES, PURPOSES, SOURCE_SYSTEMS

PROJECT_FILE = "segments.yaml"
EXAMPLES_DIR = PROJECT_ROOT / "examples"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_KEYS = {
    "name",
    "definition",
    "prediction",
    "playbooks",
    "lock",
    "mappings",
    "identity",
    "landing",
    "home",
    "time_zone",
    "base_currency",
    "lawful_basis",
    "description",
}


class ProjectError(ValueError):
    """A project folder or `segments.yaml` that cannot be used, with the reason and what to do."""


@dataclass(frozen=True)
class LawfulBasis:
    """The basis one purpose rests on: `default` for every source, `by_source` where a source differs."""

    default: str = "consent"
    by_source: dict[str, str] = field(default_factory=dict)

    def rows(self, purpose: str) -> list[tuple[str, str, str]]:
        """(purpose, source system, basis) rows; source '*' is the default."""
        return [(purpose, "*", self.default)] + [(purpose, s, b) for s, b in sorted(self.by_source.items())]


@dataclass(frozen=True)
class Project:
    """One resolved project: absolute paths and typed settings."""

    root: Path
    name: str
    definition: Path
    playbooks: Path
    lock: Path
    mappings_dir: Path | None
    identity_dir: Path | None
    landing_dir: Path | None
    home: Path | None
    time_zone: str
    lawful_basis: dict[str, LawfulBasis]
    base_currency: str = DEFAULT_BASE_CURRENCY
    embedded: bool = False
    prediction: Path | None = None  # None: the embedded prediction definition

    @property
    def prediction_definition(self) -> Path:
        """The churn and value models' definition file: the project's, else the embedded one."""
        from ml.prediction.definition import PREDICTION

        return self.prediction or PREDICTION

    @property
    def contracts(self) -> tuple[TableContract, ...]:
        """The landing contract under this project's base currency and time zone."""
        return contracts_for(self.base_currency, self.time_zone)

    def basis_rows(self) -> list[tuple[str, str, str]]:
        """Every (purpose, source system, basis) the project configures, for `audit.lawful_bases`."""
        return [row for purpose in PURPOSES for row in self.lawful_basis[purpose].rows(purpose)]

    def describe(self) -> str:
        bases = ", ".join(
            f"{p} {b.default}" + "".join(f" ({s}: {v})" for s, v in sorted(b.by_source.items()))
            for p, b in self.lawful_basis.items()
        )
        where = "embedded demo project" if self.embedded else str(self.root)
        return f"project {self.name} ({where}); lawful basis: {bases}"


def embedded_project() -> Project:
    """The demo project shipped with the product: consent for every purpose, the repo's definitions."""
    from ml.segmentation.definition import BEHAVIOURAL, DEFINITIONS_DIR, VERSION_LOCK
    from ml.segmentation.playbooks import PLAYBOOKS

    return Project(
        root=DEFINITIONS_DIR,
        name="demo",
        definition=BEHAVIOURAL,
        playbooks=PLAYBOOKS,
        lock=VERSION_LOCK,
        mappings_dir=None,
        identity_dir=None,
        landing_dir=None,
        home=None,
        time_zone="UTC",
        lawful_basis={p: LawfulBasis() for p in PURPOSES},
        embedded=True,
    )


def _basis(purpose: str, raw: Any, where: str) -> LawfulBasis:
    if raw is None:
        return LawfulBasis()
    if isinstance(raw, str):
        raw = {"default": raw}
    if not isinstance(raw, dict):
        raise ProjectError(f"{where}: lawful_basis.{purpose} must be a basis or a mapping, got {raw!r}")
    default = raw.get("default", "consent")
    by_source = {str(k): v for k, v in raw.items() if k != "default"}
    unknown = sorted(set(by_source) - set(SOURCE_SYSTEMS))
    if unknown:
        raise ProjectError(
            f"{where}: lawful_basis.{purpose}: unknown source systems {unknown} (known: {', '.join(SOURCE_SYSTEMS)})"
        )
    for label, value in [("default", default), *by_source.items()]:
        if value not in BASES:
            raise ProjectError(
                f"{where}: lawful_basis.{purpose}.{label} is {value!r}; choose one of {', '.join(BASES)}"
            )
    return LawfulBasis(default=default, by_source=by_source)


def _inside(root: Path, value: Any, key: str, where: str) -> Path:
    """A path setting, relative to the project root (absolute paths are taken as they are)."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise ProjectError(f"{where}: {key} must be a path, got {value!r}")
    return (root / Path(value).expanduser()).resolve()


def _time_zone(value: Any, where: str) -> str:
    """A time zone name DuckDB knows (its `pg_timezone_names()`), e.g. Europe/Berlin or UTC."""
    import duckdb

    name = str(value)
    with duckdb.connect(config=OFFLINE_CONFIG) as con:
        known = {z for (z,) in con.execute("select name from pg_timezone_names()").fetchall()}
    if name not in known:
        close = sorted(z for z in known if z.lower() == name.lower())
        hint = f" (did you mean {close[0]}?)" if close else " (an IANA name such as Europe/Berlin, or UTC)"
        raise ProjectError(f"{where}: time_zone {name!r} is not a known time zone{hint}")
    return name


def load_project(root: Path) -> Project:
    """Read and validate `root/segments.yaml`; raise ProjectError naming the key at fault."""
    root = Path(root).expanduser().resolve()
    path = root / PROJECT_FILE
    if not path.is_file():
        raise ProjectError(
            f"{root} is not a segments project (no {PROJECT_FILE}): create one with `segments init {root}`"
        )
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ProjectError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ProjectError(f"{path}: expected a mapping of settings")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ProjectError(f"{path}: unknown settings {unknown} (known: {', '.join(sorted(_KEYS))})")
    name = str(raw.get("name", ""))
    if not _NAME.match(name):
        raise ProjectError(f"{path}: name {name!r} must be lowercase letters, digits and _, starting with a letter")
    bases = raw.get("lawful_basis") or {}
    if not isinstance(bases, dict) or sorted(set(bases) - set(PURPOSES)):
        raise ProjectError(f"{path}: lawful_basis must map purposes ({', '.join(PURPOSES)}) to a basis")

    base_currency = str(raw.get("base_currency", DEFAULT_BASE_CURRENCY))
    if not CURRENCY_CODE.match(base_currency):
        raise ProjectError(f"{path}: base_currency must be an ISO 4217 code such as EUR, got {base_currency!r}")

    def optional(key: str, default: str | None) -> Path | None:
        value = raw.get(key, default)
        return None if value is None else _inside(root, value, key, str(path))

    return Project(
        root=root,
        name=name,
        definition=_inside(root, raw.get("definition", "definitions/behavioural.yaml"), "definition", str(path)),
        playbooks=_inside(root, raw.get("playbooks", "playbooks.yaml"), "playbooks", str(path)),
        lock=_inside(root, raw.get("lock", "versions.lock"), "lock", str(path)),
        mappings_dir=optional("mappings", "mappings"),
        identity_dir=optional("identity", "identity"),
        landing_dir=optional("landing", "landing"),
        home=optional("home", ".segments"),
        time_zone=_time_zone(raw.get("time_zone", "UTC"), str(path)),
        lawful_basis={p: _basis(p, bases.get(p), str(path)) for p in PURPOSES},
        base_currency=base_currency,
        prediction=optional("prediction", None),
    )


SEGMENTS_YAML = """\
# A segments project (docs/projects.md): your definitions, playbooks, source mappings and settings.
# Paths are relative to this folder. Select the project with SEGMENTS_PROJECT={root} or
# `segments --project {root} ...`.
name: {name}
# The segment definition in use (change the file, bump its version, run `segments definitions lock`).
definition: definitions/behavioural.yaml
# The churn and value models: horizon, training snapshots, features, promotion gates (same version lock).
prediction: definitions/prediction.yaml
playbooks: playbooks.yaml
lock: versions.lock
# Source mappings: how your export files become landing tables (`segments map check` previews them).
mappings: mappings
identity: identity
landing: landing
# Warehouse, MLflow registry, BI copy and run logs (SEGMENTS_HOME overrides). Keep out of version control.
home: .segments
# Time zone of source timestamps that carry no offset (mappings may set their own).
time_zone: UTC
# Every amount is converted to this currency (ISO 4217); orders and payments in it need no FX rate.
base_currency: EUR
# The lawful basis of each purpose: consent | legitimate_interest | contract, optionally per source
# system, e.g. profiling: {{default: consent, erp: contract}}. A customer's latest refusal or withdrawal
# of consent for a purpose always wins.
lawful_basis:
  profiling: {profiling}
  marketing_email: consent
  marketing_sms: consent
"""


def init_project(target: Path, *, name: str | None = None, example: str | None = None) -> Project:
    """Scaffold a project in `target` (created; refused when it already holds a project or other files):
    the embedded definition and playbooks as a starting point, a lock that records them, empty
    mappings/identity/landing folders. `example`: copy a worked example from `examples/` instead."""
    from ml.prediction.definition import PREDICTION
    from ml.segmentation.definition import BEHAVIOURAL
    from ml.segmentation.playbooks import PLAYBOOKS

    target = Path(target).expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise ProjectError(f"{target} is not empty: `segments init` creates a new project in an empty folder")
    if example is not None:
        source = EXAMPLES_DIR / example
        if not _NAME.match(example) or not (source / PROJECT_FILE).is_file():
            known = sorted(p.name for p in EXAMPLES_DIR.iterdir() if (p / PROJECT_FILE).is_file())
            raise ProjectError(f"unknown example {example!r}; examples: {', '.join(known)}")
        shutil.copytree(source, target, dirs_exist_ok=True)
        return load_project(target)
    name = name or re.sub(r"[^a-z0-9_]", "_", target.name.lower()).strip("_") or "project"
    if not _NAME.match(name):
        name = f"project_{name}"[:63]
    (target / "definitions").mkdir(parents=True)
    for folder in ("mappings", "identity", "landing"):
        (target / folder).mkdir()
    shutil.copyfile(BEHAVIOURAL, target / "definitions" / "behavioural.yaml")
    shutil.copyfile(PREDICTION, target / "definitions" / "prediction.yaml")
    shutil.copyfile(PLAYBOOKS, target / "playbooks.yaml")
    (target / PROJECT_FILE).write_text(SEGMENTS_YAML.format(root=target, name=name, profiling="consent"))
    (target / ".gitignore").write_text(".segments/\n")
    project = load_project(target)
    lock_project(project)
    return project


@dataclass(frozen=True)
class DefinitionInUse:
    """The segment definition runs train with, its lock, and why it is the one."""

    path: Path
    lock: Path
    source: str  # "project" | "remembered" (an earlier `segments run --definition`) | "this run"


def lock_for(project: Project, definition: Path) -> Path:
    """The version lock of a definition file: the project's for files inside the project (the embedded
    project's folder included), else the `versions.lock` beside the file."""
    definition = Path(definition).resolve()
    return project.lock if definition.is_relative_to(project.root) else definition.parent / "versions.lock"


def definition_in_use(project: Project, state_path: Path) -> DefinitionInUse:
    """The definition the project declares, unless `segments run --definition` chose another since the
    declaration last changed (`remember_definition`): then that one, so a later delivery trains and
    scores under the same definition instead of silently switching back."""
    if state_path.is_file():
        try:
            state = json.loads(state_path.read_text())
        except ValueError:
            state = {}
        chosen = Path(state.get("path", ""))
        if state.get("declared") == str(project.definition) and chosen.is_file():
            return DefinitionInUse(chosen, lock_for(project, chosen), "remembered")
    return DefinitionInUse(project.definition, lock_for(project, project.definition), "project")


def prediction_in_use(project: Project):
    """The project's prediction definition, validated against its version lock."""
    from ml.prediction.definition import load_prediction_definition

    path = project.prediction_definition
    return load_prediction_definition(path, lock_for(project, path))


def remember_definition(project: Project, state_path: Path, definition: Path) -> None:
    """Record `definition` as the one later runs of this home use (until the project declares another)."""
    state_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"path": str(Path(definition).resolve()), "declared": str(project.definition)}))
    tmp.replace(state_path)


def lock_project(project: Project) -> list[str]:
    """`segments definitions lock`: validate every definition in the folder of the project's definition
    (`definitions/`: segment definitions, and prediction definitions by their `kind: prediction`) and its
    playbooks, and record the versions not in the lock yet. Returns what was recorded; raises
    VersionLockError when a released version's content changed (bump it instead)."""
    from ml.prediction.definition import KIND, parse_prediction_definition
    from ml.segmentation.definition import parse_definition
    from ml.segmentation.playbooks import parse_playbooks
    from ml.versioning import record_versions

    folder = project.definition.parent
    files = [f for f in sorted(folder.glob("*.yaml")) if f.resolve() != project.playbooks.resolve()]
    files = list(dict.fromkeys([*files, project.definition]))
    if project.prediction is not None:
        files = list(dict.fromkeys([*files, project.prediction]))
    raws = [yaml.safe_load(f.read_text()) for f in files]
    items: list[Any] = [
        parse_prediction_definition(r) if isinstance(r, dict) and r.get("kind") == KIND else parse_definition(r)
        for r in raws
    ]
    if project.playbooks.is_file():
        items.append(parse_playbooks(yaml.safe_load(project.playbooks.read_text())))
    return record_versions(project.lock, items)
