"""`segments bench identity|segmentation|pipeline`: arguments in, a call of the `bench` package out.

The benches live in `bench/`, which imports orchestration: it is imported here inside the commands
only. The identity and segmentation benches run a job in this process with `execute_job`, handed to
them (bench never imports the command line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestration.cli.run import execute_job


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="measure a stage against the generator's ground truth")
    bench = b.add_subparsers(dest="bench", required=True)
    bi = bench.add_parser("identity", help="identity resolution: pairwise precision/recall/F1, cluster accuracy, time")
    bi.add_argument("--customers", type=int, default=100_000, help="generated persons (without --set)")
    bi.add_argument("--seed", type=int, default=7)
    bi.add_argument(
        "--no-contact-share",
        type=float,
        default=0.0,
        help="share of generated persons with neither e-mail nor phone anywhere (e.g. 0.3)",
    )
    bi.add_argument(
        "--set",
        dest="labelled_set",
        choices=("historical_50k", "fake_1000"),
        help="a public labelled set of ../shared/data/identity_benchmarks, delivered as a CRM customers file",
    )
    bi.add_argument("--labels", action="store_true", help="with --set: give identity the set's clerical labels")
    bi.add_argument("--data-root", help="folder of the labelled sets (default ../shared/data/identity_benchmarks)")
    bi.add_argument(
        "--workdir", help="where data and the run go (default data/bench/identity-...; generated data is reused)"
    )
    bi.set_defaults(func=cmd_bench_identity)
    bs = bench.add_parser(
        "segmentation", help="whole pipeline: segments vs planted segments (ARI), model metrics, time"
    )
    bs.add_argument("--customers", type=int, default=100_000)
    bs.add_argument("--seed", type=int, default=7)
    bs.add_argument("--workdir", help="where data and the run go (default data/bench/segmentation-N; data is reused)")
    bs.set_defaults(func=cmd_bench_segmentation)
    bq = bench.add_parser(
        "prediction", help="whole pipeline: churn model vs the planted churn, back-test and training time"
    )
    bq.add_argument("--customers", type=int, default=20_000)
    bq.add_argument("--seed", type=int, default=42)
    bq.add_argument("--workdir", help="where data and the run go (default data/bench/prediction-N; data is reused)")
    bq.set_defaults(func=cmd_bench_prediction)
    bp = bench.add_parser(
        "pipeline", help="whole pipeline at several scales vs a DuckDB floor and a pandas script (speed, memory)"
    )
    bp.add_argument("--scales", default="10000,100000,1000000", help="comma-separated person counts")
    bp.add_argument("--seed", type=int, default=7)
    bp.add_argument(
        "--workdir", default="data/bench/pipeline", help="data, runs and reports (data is reused per scale)"
    )
    bp.add_argument("--update-benchmarks", metavar="MD", help="replace the generated section of this BENCHMARKS.md")
    bp.set_defaults(func=cmd_bench_pipeline)


def cmd_bench_identity(args: argparse.Namespace) -> int:
    """Generate N persons (or deliver a labelled set), resolve their identities through the real Dagster
    job, score vs truth."""
    from bench.identity import bench_identity, bench_identity_set
    from bench.jobs import BenchFailed

    workdir = Path(args.workdir) if args.workdir else None
    if not 0.0 <= args.no_contact_share <= 1.0:
        print("--no-contact-share must be between 0 and 1", file=sys.stderr)
        return 2
    if args.labels and not args.labelled_set:
        print("--labels needs --set", file=sys.stderr)
        return 2
    try:
        if args.labelled_set:
            root = Path(args.data_root) if args.data_root else None
            bench_identity_set(args.labelled_set, workdir, execute_job, root=root, labels=args.labels)
        else:
            bench_identity(args.customers, args.seed, workdir, execute_job, no_contact_share=args.no_contact_share)
    except (BenchFailed, FileNotFoundError) as err:
        print(f"segments bench identity: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_bench_segmentation(args: argparse.Namespace) -> int:
    """Run the whole pipeline on N generated persons and compare the segments with the planted ones."""
    from bench.jobs import BenchFailed
    from bench.segmentation import bench_segmentation

    try:
        bench_segmentation(args.customers, args.seed, Path(args.workdir) if args.workdir else None, execute_job)
    except BenchFailed as err:
        print(f"segments bench segmentation: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_bench_prediction(args: argparse.Namespace) -> int:
    """Run the whole pipeline on N generated persons; back-test the prediction models, score against planted churn."""
    from bench.jobs import BenchFailed
    from bench.prediction import bench_prediction

    try:
        bench_prediction(args.customers, args.seed, Path(args.workdir) if args.workdir else None, execute_job)
    except BenchFailed as err:
        print(f"segments bench prediction: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_bench_pipeline(args: argparse.Namespace) -> int:
    """Full pipeline per scale with stage times and memory, a re-run, the DuckDB floor and pandas."""
    from bench.pipeline import bench_pipeline

    try:
        scales = [int(x.replace("_", "")) for x in args.scales.split(",") if x.strip()]
    except ValueError:
        print(f"--scales: expected comma-separated integers, got {args.scales!r}", file=sys.stderr)
        return 2
    try:
        bench_pipeline(
            scales,
            Path(args.workdir).resolve(),
            args.seed,
            Path(args.update_benchmarks) if args.update_benchmarks else None,
        )
    except RuntimeError as err:
        print(f"segments bench pipeline: {err}", file=sys.stderr)
        return 1
    return 0
