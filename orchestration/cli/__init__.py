"""`segments`: the command line of the project.

segments init DIR [--example NAME]                    a user project (then SEGMENTS_PROJECT=DIR or --project DIR)
segments definitions lock | show                      record definition versions; which definition is in use
segments map check                                    what the project's mappings would load and reject
segments generate --customers N --seed S --out DIR   demo landing data + ground truth
segments run [--landing DIR]                          materialize the whole graph in-process
segments backtest [--as-of D ...] [--horizon DAYS]   churn and value models scored out of time vs baselines
segments docs                                         dbt docs (lineage, exposures) as one offline HTML file
segments import online-retail --source D --out DIR    real Online Retail II data -> landing layout
segments quarantine                                   what was rejected, by table and reason
segments explain CUSTOMER                             a customer's segments back to models, data, dbt and files
segments report [--serve]                             the segment report of the current publication (HTML)
segments identity review | decide                     identity review queue; link / never-link decisions
segments bench identity --customers N | --set NAME    identity accuracy vs ground truth + timings
segments bench segmentation --customers N             segments vs planted segments (ARI) + timings
segments bench pipeline [--scales 10000,100000,...]   whole pipeline vs DuckDB floor and pandas
segments ui                                           Dagster UI + MLflow UI on 127.0.0.1
"""

# One module per command group, each adding its sub-command to the parser; each imports what its
# command needs when the command runs, so `segments --help` loads neither Dagster nor dbt. `run` is
# also the application entry point of a pipeline run (`run.run_pipeline`), which the tests call.
# `bench` only turns arguments into calls of the `bench` package (imported there lazily: bench imports
# orchestration, and nothing outside this package may import bench).

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from orchestration.cli import bench, data, docs, explain, generate, identity, predict, project, report, run, ui


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", help="the user project folder (default: $SEGMENTS_PROJECT, else the demo)")
    sub = parser.add_subparsers(dest="command", required=True)
    project.add_parser(sub)
    project.add_map_parser(sub)
    generate.add_parser(sub)
    docs.add_parser(sub)
    run.add_parser(sub)
    predict.add_parser(sub)
    data.add_import_parser(sub)
    data.add_quarantine_parser(sub)
    explain.add_parser(sub)
    report.add_parser(sub)
    identity.add_parser(sub)
    bench.add_parser(sub)
    ui.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from orchestration.project import ProjectError

    args = build_parser().parse_args(argv)
    if args.project:
        os.environ["SEGMENTS_PROJECT"] = str(Path(args.project).expanduser().resolve())
    try:
        return args.func(args)
    except ProjectError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


__all__ = ["build_parser", "main"]
