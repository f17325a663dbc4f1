"""`segments backtest`: train the churn and value models on past snapshots and score later ones, on any
landed data (the project's warehouse), and report how they did beside the baselines."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from orchestration.settings import get_settings

SNAPSHOT_MODELS = ("customer_feature_snapshots", "customer_outcomes")


def add_parser(sub) -> None:
    b = sub.add_parser(
        "backtest",
        help="out-of-time back-test of the churn and value models on the landed data",
        description="Rebuilds the training snapshots (marts.customer_feature_snapshots, marts.customer_outcomes) "
        "for the dates asked, trains on the snapshots whose outcome window closed before each evaluated date, "
        "scores that date and compares with the baselines. Writes a report (Markdown, JSON, plots). The next "
        "`segments run` rebuilds the snapshots of the project's prediction definition.",
    )
    b.add_argument("--as-of", action="append", default=[], metavar="YYYY-MM-DD", help="a snapshot date (repeat)")
    b.add_argument("--horizon", type=int, help="outcome window in days (default: the prediction definition's)")
    b.add_argument("--snapshots", type=int, help="without --as-of: how many snapshot dates")
    b.add_argument("--every", type=int, help="without --as-of: days between snapshot dates")
    b.add_argument("--evaluate-last", type=int, help="how many of the latest dates are scored out of time")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", help="report folder (default: $SEGMENTS_HOME/reports/backtest-<time>)")
    b.set_defaults(func=cmd_backtest)


def _definition(args: argparse.Namespace, project):
    """The project's prediction definition with the command's overrides."""
    from ml.prediction.definition import PredictionDefinitionError
    from orchestration.project import prediction_in_use

    definition = prediction_in_use(project)
    changes = {}
    if args.horizon is not None:
        changes["horizon_days"] = args.horizon
    if args.snapshots is not None:
        changes["snapshot_count"] = args.snapshots
    if args.every is not None:
        changes["snapshot_every_days"] = args.every
    if args.evaluate_last is not None:
        changes["evaluate_last"] = args.evaluate_last
    if args.as_of:
        changes["snapshot_count"] = len(set(args.as_of))
        changes.setdefault("evaluate_last", max(1, len(set(args.as_of)) - 1))
    definition = dataclasses.replace(definition, **changes)
    if not 1 <= definition.evaluate_last < definition.snapshot_count:
        raise PredictionDefinitionError(
            f"{definition.snapshot_count} snapshot date(s), {definition.evaluate_last} evaluated: evaluate fewer "
            "dates than there are (the earlier snapshots are what the later ones are predicted from)"
        )
    return definition


def cmd_backtest(args: argparse.Namespace) -> int:
    from ml.prediction.backtest import BacktestError, backtest
    from ml.prediction.definition import PredictionDefinitionError
    from ml.prediction.plots import backtest_plots
    from ml.prediction.report import backtest_markdown
    from ml.prediction.training_sets import read_training_set
    from orchestration.dbt import run_dbt
    from orchestration.runs import HomeBusy, home_lock
    from warehouse.connections import connect

    settings = get_settings()
    if not settings.warehouse_path.exists():
        print(f"no warehouse at {settings.warehouse_path}: run `segments run` first", file=sys.stderr)
        return 2
    try:
        definition = _definition(args, settings.project)
        prediction = definition.dbt_settings(tuple(sorted(set(args.as_of))))
    except PredictionDefinitionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else settings.home / "reports" / f"backtest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    try:
        with home_lock(settings.home):
            proc = run_dbt(
                ["run", "--select", *SNAPSHOT_MODELS, "--target-path", str(settings.home / "dbt" / "backtest")],
                settings.warehouse_path,
                extra_env={"SEGMENTS_PREDICTION": prediction, "SEGMENTS_BASE_CURRENCY": settings.project.base_currency},
            )
            if proc.returncode != 0:
                print(f"error: building the snapshots failed:\n{proc.stdout[-3000:]}", file=sys.stderr)
                return 1
            with connect(settings.warehouse_path, read_only=True) as con:
                training_set = read_training_set(con, definition)
    except HomeBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        result = backtest(training_set, definition, seed=args.seed)
    except BacktestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    plots = backtest_plots(result, out)
    report = backtest_markdown(result, definition, training_set, plots)
    (out / "backtest.md").write_text(report)
    (out / "backtest.json").write_text(json.dumps(result.to_json(definition), indent=2))
    print(report)
    print(f"report: {out / 'backtest.md'}")
    return 0
