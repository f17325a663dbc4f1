"""`segments init` and `segments definitions`: a user project outside the repo (orchestration/project.py).

segments init DIR [--example NAME]   scaffold a project (or copy a worked example from examples/)
segments definitions lock            record new definition and playbook versions in the project's lock
segments definitions show            which definition runs use, and why
segments map check                   what the project's mappings make of the files waiting in the landing
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    init = sub.add_parser("init", help="scaffold a user project (definitions, playbooks, mappings, settings)")
    init.add_argument("dir", help="the project folder to create (must be empty or missing)")
    init.add_argument("--name", help="project name (default: from the folder name)")
    init.add_argument("--example", help="copy a worked example instead: online_retail_ii, one_orders_export")
    init.set_defaults(func=cmd_init)
    defs = sub.add_parser("definitions", help="the project's segment definitions and their version lock")
    verbs = defs.add_subparsers(dest="verb", required=True)
    verbs.add_parser("lock", help="record every new definition / playbook version in the project's lock").set_defaults(
        func=cmd_lock
    )
    verbs.add_parser("show", help="the definition runs train and score with, and why").set_defaults(func=cmd_show)


def cmd_init(args: argparse.Namespace) -> int:
    from orchestration.project import ProjectError, init_project

    try:
        project = init_project(args.dir, name=args.name, example=args.example)
    except ProjectError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"created project {project.name} in {project.root}\n"
        f"  settings     {project.root / 'segments.yaml'}  (lawful bases, time zone, paths)\n"
        f"  definition   {project.definition}\n"
        f"  playbooks    {project.playbooks}\n"
        f"  mappings     {project.mappings_dir}  (how your export files become landing tables)\n"
        f"  landing      {project.landing_dir}\n"
        f"next: export SEGMENTS_PROJECT={project.root}\n"
        "      segments map check      # what your files would load and reject\n"
        "      segments run"
    )
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from ml.segmentation.definition import DefinitionError
    from ml.segmentation.playbooks import PlaybookError
    from ml.versioning import VersionLockError
    from orchestration.project import lock_project
    from orchestration.settings import get_settings

    project = get_settings().project
    try:
        added = lock_project(project)
    except (VersionLockError, DefinitionError, PlaybookError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{project.lock}: " + (f"recorded {', '.join(added)}" if added else "every version already recorded"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from ml.segmentation.definition import DefinitionError, load_definition
    from orchestration.project import definition_in_use
    from orchestration.settings import get_settings

    settings = get_settings()
    in_use = definition_in_use(settings.project, settings.definition_state_path)
    print(settings.project.describe())
    print(f"definition   {in_use.path} ({in_use.source})")
    try:
        d = load_definition(in_use.path, in_use.lock)
    except (DefinitionError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"             {d.name} {d.version}, registered as MLflow model {d.model_name}")
    from ml.prediction.definition import PredictionDefinitionError
    from orchestration.project import prediction_in_use

    print(f"prediction   {settings.project.prediction_definition}")
    try:
        prediction = prediction_in_use(settings.project)
    except (PredictionDefinitionError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"             {prediction.name} {prediction.version}: churn within {prediction.horizon_days} days and future "
        f"value, registered as MLflow models {prediction.churn_model_name} and {prediction.value_model_name}"
    )
    print(f"             predictive segments, first match: {'; '.join(s.name for s in prediction.segments)}")
    return 0


def add_map_parser(sub) -> None:
    m = sub.add_parser("map", help="the project's source mappings: how your export files become landing tables")
    verbs = m.add_subparsers(dest="verb", required=True)
    check = verbs.add_parser("check", help="what every file under <landing>/<mapping name>/ would load and reject")
    check.add_argument("--landing", help="landing folder (default: $SEGMENTS_LANDING or the project's landing)")
    check.set_defaults(func=cmd_map_check)


def cmd_map_check(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from orchestration.settings import get_settings
    from warehouse.mapped_deliveries import load_mappings, trial_load
    from warehouse.mapping import MappingError

    settings = get_settings()
    landing = Path(args.landing).expanduser().resolve() if args.landing else settings.landing_dir
    try:
        mappings = load_mappings(settings.project.mappings_dir, settings.project.time_zone)
    except MappingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not mappings:
        print(f"no mappings in {settings.project.mappings_dir}: landing files must follow the contract as they are")
        return 0
    with tempfile.TemporaryDirectory(prefix="segments-map-check-") as work:
        trial = trial_load(mappings, landing, Path(work), settings.project.base_currency)
    for mapping in mappings:
        print(f"mapping {mapping.name} ({mapping.path}): files under {landing / mapping.name}")
    for c in trial.checks:
        line = f"  {c.file.name}  {c.table:<16} {c.source_rows:>10,} source rows -> {c.mapped_rows:>10,} rows"
        print(line)
        for column, n in c.unconverted.items():
            example = c.examples.get(column)
            print(f"      {column}: {n:,} value(s) not converted (e.g. {example!r}): the ingest rejects them")
        for column, n in c.empty_required.items():
            print(f"      {column}: empty in {n:,} row(s): missing_required")
    print("trial load (a throw-away warehouse; references checked within these files only)")
    for f in trial.files:
        print(
            f"  {f.source_table:<16} {Path(f.source_file).name:<48} {f.status:<7} read {f.rows_read:>9,} = loaded "
            f"{f.rows_loaded:,} + quarantined {f.rows_quarantined:,} + already loaded {f.rows_already_loaded:,}"
            + (f" + updated {f.rows_updated:,}" if f.rows_updated else "")
            + (f" + deleted {f.rows_deleted:,}" if f.rows_deleted else "")
            + (f"  ({f.message})" if f.message else "")
        )
    for table, kinds in trial.reasons.items():
        print(f"  quarantine {table}: " + ", ".join(f"{kind} {n:,}" for kind, n in kinds))
    for where, error in trial.failures.items():
        print(f"error: {where}: {error}", file=sys.stderr)
    return 1 if trial.failures or any(f.status == "failed" for f in trial.files) else 0
