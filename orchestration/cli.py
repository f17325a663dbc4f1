"""`segments`: the command line of the project.

segments generate --customers N --seed S --out DIR   demo landing data + ground truth
segments run [--landing DIR]                          materialize the whole graph in-process
segments import online-retail --source D --out DIR    real Online Retail II data -> landing layout
segments quarantine                                   what was rejected, by table and reason
segments bench identity --customers N                 identity accuracy vs ground truth + timings
segments bench segmentation --customers N             segments vs planted segments (ARI) + timings
segments bench pipeline [--scales 10000,100000,...]   whole pipeline vs DuckDB floor and pandas
segments ui                                           Dagster UI + MLflow UI on 127.0.0.1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from orchestration.settings import PROJECT_ROOT, Settings, get_settings

STAGE_NAMES = {
    "landing_files": "ingest landing files -> raw",
    "identity_input_models": "dbt build: person staging + identity candidates (+ tests)",
    "identity_resolution": "identity: rules + Splink + guardrails -> stable customer ids",
    "warehouse_models": "dbt build: staging, golden record, marts (+ tests)",
    "customers_pass_expectation_suite": "quality: Great Expectations on marts.customers",
    "customer_segmentation": "train + register segmentation model (MLflow)",
    "customer_segment_assignments": "score customers with @champion -> ml",
    "segment_models": "dbt build: segments (+ tests)",
    "bi_copy": "serving: publish the read-only BI copy",
    "assignments_cover_all_customers": "check: one segment per customer",
    "every_file_reconciles": "check: ingest ledger reconciles",
    "new_rows_pass_expectation_suite": "quality: GX suite on new raw rows",
    "passes_expectation_suite": "quality: GX suite",
}


PER_TABLE_CHECKS = {"new_rows_pass_expectation_suite", "passes_expectation_suite"}


def _label(step_key: str) -> str:
    """Readable stage name for a step key (asset steps are prefixed with their key path)."""
    for name, label in STAGE_NAMES.items():
        if step_key == name:
            return label
        if step_key.endswith("_" + name):
            table = step_key[: -len(name) - 1].replace("__", ".")
            return f"{label} ({table})" if name in PER_TABLE_CHECKS else label
    return step_key


def _prepare_environment(landing: Path | None) -> Settings:
    """Pin the settings for this process and its children (dbt, Dagster) before anything loads."""
    if landing is not None:
        os.environ["SEGMENTS_LANDING"] = str(landing.resolve())
    settings = get_settings()
    os.environ["SEGMENTS_HOME"] = str(settings.home)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    os.environ["SEGMENTS_WAREHOUSE_PATH"] = str(settings.warehouse_path)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    # MLflow: requirements are pinned explicitly; keep its console quiet (details go to the run log).
    os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("TQDM_DISABLE", "1")
    settings.ensure_dirs()
    return settings


def cmd_generate(args: argparse.Namespace) -> int:
    if args.next_period:
        from demo.increment import generate_increment

        try:
            inc = generate_increment(Path(args.out), days=args.days, seed=args.seed)
        except (ValueError, FileNotFoundError) as err:
            print(f"segments generate --next-period: {err}", file=sys.stderr)
            return 2
        print(
            f"Next period {inc.period_start} .. {inc.period_end}: {inc.orders:,} orders, "
            f"{inc.order_lines:,} lines from "
            f"{inc.buyers:,} buyers ({inc.slipped:,} champions and loyal regulars stopped buying)\n"
            + "\n".join(f"  {f}" for f in inc.files)
        )
        return 0
    from demo.generator import generate

    summary = generate(
        Path(args.out),
        customers=args.customers,
        seed=args.seed,
        orders_per_customer=args.orders_per_customer,
        lines_per_order=args.lines_per_order,
        tickets_per_customer=args.tickets_per_customer,
        duplicate_rate=args.duplicate_rate,
    )
    print(summary.describe())
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    """dbt docs as one self-contained HTML file (lineage from sources to exposures), built offline."""
    from orchestration.dbt import DBT_PROJECT_DIR

    settings = get_settings()
    if not settings.warehouse_path.exists():
        print(
            f"no warehouse at {settings.warehouse_path}: run `segments run` first (the docs read its catalog)",
            file=sys.stderr,
        )
        return 2
    target = settings.home / "docs"
    env = {
        **os.environ,
        "SEGMENTS_WAREHOUSE_PATH": str(settings.warehouse_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [
            str(dbt),
            "docs",
            "generate",
            "--static",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    page = target / "static_index.html"
    if proc.returncode != 0 or not page.exists():
        print(f"dbt docs generate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}", file=sys.stderr)
        return 1
    print(f"dbt docs (one self-contained file, works offline): {page}\n  open it in a browser: file://{page}")
    return 0


class _Progress(threading.Thread):
    """Prints step starts/ends and check results of a run while it executes in this process."""

    def __init__(self, instance, run_id: str, out) -> None:
        super().__init__(daemon=True)
        self.instance, self.run_id, self.out = instance, run_id, out
        self.stop = threading.Event()
        self.started: dict[str, float] = {}
        self.durations: dict[str, float] = {}  # step key -> seconds, for benchmarks

    def run(self) -> None:
        cursor = None
        while not self.stop.is_set():
            cursor = self._drain(cursor)
            self.stop.wait(0.3)
        self._drain(cursor)

    def _drain(self, cursor):
        from dagster import DagsterEventType

        try:
            conn = self.instance.get_records_for_run(self.run_id, cursor=cursor, limit=1000)
        except Exception:  # the run may not exist yet
            return cursor
        for record in conn.records:
            event = record.event_log_entry.dagster_event
            if event is None:
                continue
            step = event.step_key or ""
            label = _label(step)
            if event.event_type == DagsterEventType.STEP_START:
                self.started[step] = time.monotonic()
                print(f"  ... {label}", file=self.out, flush=True)
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                took = time.monotonic() - self.started.get(step, time.monotonic())
                self.durations[step] = took
                mark = "ok " if event.event_type == DagsterEventType.STEP_SUCCESS else "FAILED"
                print(f"  {mark} {label} ({took:.1f} s)", file=self.out, flush=True)
                if event.event_type == DagsterEventType.STEP_FAILURE:
                    err = event.step_failure_data.error
                    while err is not None and err.cause is not None:  # the root cause, not Dagster's wrapper
                        err = err.cause
                    print(f"      {err.message.strip() if err else ''}", file=self.out, flush=True)
            elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
                data = event.event_specific_data
                if not data.passed:
                    sev = data.severity.value if data.severity else "ERROR"
                    print(
                        f"      check {sev.lower()}: {data.asset_key.to_user_string()} / {data.check_name}",
                        file=self.out,
                        flush=True,
                    )
        return conn.cursor


def execute_job(settings: Settings, job_name: str, out=sys.stdout, definition: Path | None = None, force: bool = False):
    """Run one job of the code location in this process, printing progress to `out` and the full
    dbt/Dagster log to `$SEGMENTS_HOME/logs/`. Returns (result, log path, seconds, seconds per step)."""
    from dagster import DagsterInstance

    from ml.model_registry import ensure_tracking_db
    from orchestration.definitions import build_definitions

    t0 = time.monotonic()
    ensure_tracking_db(settings.mlflow_db_path)
    defs = build_definitions(settings)
    job = defs.resolve_job_def(job_name)
    instance = DagsterInstance.get()
    run_id = str(uuid.uuid4())
    print(f"run {run_id} (definitions loaded in {time.monotonic() - t0:.1f} s)", file=out)
    log_path = settings.home / "logs" / f"run-{run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    progress = _Progress(instance, run_id, out)
    progress.start()
    # dbt and Dagster write their detailed logs to stdout: keep them in a file, print only progress.
    try:
        with log_path.open("w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            result = job.execute_in_process(
                instance=instance,
                run_id=run_id,
                raise_on_error=False,
                run_config={
                    "loggers": {"console": {"config": {"log_level": "ERROR"}}},
                    "ops": {
                        "landing_files": {
                            "config": {"landing_dir": str(settings.landing_dir), "skip_when_unchanged": not force}
                        },
                        **(
                            {"ml__customer_segmentation": {"config": {"definition_file": str(definition.resolve())}}}
                            if definition is not None and job_name == "build_segments_job"
                            else {}
                        ),
                    },
                },
            )
    finally:
        progress.stop.set()
        progress.join()
    return result, log_path, time.monotonic() - t0, progress.durations


def cmd_run(args: argparse.Namespace) -> int:
    settings = _prepare_environment(Path(args.landing) if args.landing else None)
    print(f"SEGMENTS_HOME  {settings.home}\nlanding        {settings.landing_dir}")
    if not settings.landing_dir.is_dir():
        print(f"error: landing folder {settings.landing_dir} does not exist", file=sys.stderr)
        return 2
    from orchestration.keys import BUILD_JOB as BUILD_JOB_NAME

    definition = Path(args.definition) if args.definition else None
    if definition is not None:
        from ml.segmentation.definition import DefinitionError, load_definition

        try:
            load_definition(definition)
        except (OSError, DefinitionError) as err:
            print(f"error: segment definition {definition}: {err}", file=sys.stderr)
            return 2
    result, log_path, seconds, _ = execute_job(
        settings,
        BUILD_JOB_NAME,
        definition=definition,
        # a definition given explicitly is trained even on unchanged data
        force=args.force or definition is not None,
    )
    print(f"run {'succeeded' if result.success else 'FAILED'} in {seconds:.1f} s (full log: {log_path})\n")
    if result.success and not result.asset_materializations_for_node("landing_files"):
        print(
            "No new landing file since the last complete run: every step after the ingest was skipped "
            "(`segments run --force` rebuilds anyway).\n"
        )
    print_summary(settings, result)
    return 0 if result.success else 1


def _bench_data(args: argparse.Namespace, kind: str) -> tuple[Path, Path, bool, float]:
    """Generate (or reuse, see `bench.data.reusable`) the bench data of `args.customers` persons with
    the generator's default volumes; a fresh SEGMENTS_HOME beside it."""
    import shutil

    from bench.data import default_volumes, reusable
    from demo.generator import generate

    work = Path(args.workdir or f"data/bench/{kind}-{args.customers}").resolve()
    data, home = work / "demo", work / "home"
    t0 = time.monotonic()
    reuse = reusable(data, args.customers, args.seed, default_volumes())
    if not reuse:
        generate(data, customers=args.customers, seed=args.seed)
    shutil.rmtree(home, ignore_errors=True)
    os.environ["SEGMENTS_HOME"] = str(home)
    return work, data, reuse, time.monotonic() - t0


def _run_bench(args: argparse.Namespace, kind: str, job_name: str):
    """Prepare the bench data and a fresh SEGMENTS_HOME, run `job_name`; None if the job failed.
    Returns (workdir, data dir, settings, seconds, seconds per step)."""
    work, data, reuse, generate_s = _bench_data(args, kind)
    settings = _prepare_environment(data / "landing")
    print(
        f"{kind} bench: {args.customers:,} persons (seed {args.seed}), data {data} "
        f"({'reused' if reuse else f'generated in {generate_s:.1f} s'})"
    )
    result, log_path, seconds, durations = execute_job(settings, job_name)
    if not result.success:
        print(f"{job_name} FAILED (log: {log_path})", file=sys.stderr)
        return None
    return work, data, settings, seconds, durations


def cmd_bench_segmentation(args: argparse.Namespace) -> int:
    """Run the whole pipeline on N generated persons and compare the segments with the planted ones."""
    import json

    import duckdb
    import mlflow

    from ml.segmentation.accuracy import segment_agreement
    from orchestration.keys import BUILD_JOB as BUILD_JOB_NAME
    from warehouse.connections import OFFLINE_CONFIG as DUCKDB_CONFIG

    bench = _run_bench(args, "segmentation", BUILD_JOB_NAME)
    if bench is None:
        return 1
    work, data, settings, seconds, durations = bench
    with duckdb.connect(str(settings.warehouse_path), read_only=True, config=DUCKDB_CONFIG) as con:
        agreement = segment_agreement(con, data / "truth")
        fallbacks = dict(
            con.execute(
                "select coalesce(fallback_reason, 'placed by model'), count(*) from segments.customer_segments "
                "where segment_family = 'behavioural' group by 1"
            ).fetchall()
        )
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias("customer_segmentation", "champion")
    run = client.get_run(champion.run_id)
    report = {
        "persons_generated": args.customers,
        "seed": args.seed,
        **agreement,
        "assignments": fallbacks,
        "champion_version": str(champion.version),
        "algorithm": run.data.params.get("algorithm"),
        "k": run.data.params.get("k"),
        "metrics": {k: v for k, v in run.data.metrics.items() if not k.startswith(("share_", "silhouette_"))},
        "training_seconds": round(durations.get("ml__customer_segmentation", float("nan")), 1),
        "job_seconds": round(seconds, 1),
        "step_seconds": {k: round(v, 1) for k, v in durations.items()},
    }
    (work / "segmentation_bench.json").write_text(json.dumps(report, indent=2))
    m = report["metrics"]
    print(
        f"\nARI vs planted segments {agreement['adjusted_rand_index']:.3f} "
        f"on {agreement['customers_placed_by_model']:,} "
        f"customers placed by the model ({report['algorithm']}, k={report['k']}; "
        f"silhouette {m.get('silhouette', float('nan')):.3f}, "
        f"stability ARI {m.get('stability_ari', float('nan')):.3f}, "
        f"surrogate fidelity {m.get('surrogate_fidelity', float('nan')):.3f})"
    )
    print(f"training {report['training_seconds']} s; job {seconds:.1f} s; report: {work / 'segmentation_bench.json'}")
    return 0


def cmd_bench_identity(args: argparse.Namespace) -> int:
    """Generate N persons, resolve their identities through the real Dagster job, score vs truth."""
    import json

    import duckdb

    from ml.identity.evaluate import evaluate
    from orchestration.keys import IDENTITY_JOB as IDENTITY_JOB_NAME
    from warehouse.connections import OFFLINE_CONFIG as DUCKDB_CONFIG

    bench = _run_bench(args, "identity", IDENTITY_JOB_NAME)
    if bench is None:
        return 1
    work, data, settings, seconds, durations = bench
    with duckdb.connect(str(settings.warehouse_path), read_only=True, config=DUCKDB_CONFIG) as con:
        con.execute("create temp table assigned as select record_id, customer_id from identity.customer_source_records")
        accuracy = evaluate(con, "assigned", data / "truth", "staging.stg_events__events")
        run = con.execute(
            "select records, customers, bridges, reference_conflicts, vetoed_pairs, multi_source_share, timings "
            "from identity.resolution_runs order by resolved_at desc limit 1"
        ).fetchall()[0]
    identity_s = durations.get("identity_resolution", float("nan"))
    report = {
        "persons_generated": args.customers,
        "seed": args.seed,
        "records": run[0],
        "resolved_customers": run[1],
        "bridges_cut": run[2],
        "reference_conflicts": run[3],
        "vetoed_pairs": run[4],
        "multi_source_share": run[5],
        "identity_seconds": round(identity_s, 1),
        "identity_stage_seconds": json.loads(run[6]),
        "job_seconds": round(seconds, 1),
        "step_seconds": {k: round(v, 1) for k, v in durations.items()},
        **accuracy.as_dict(),
    }
    (work / "identity_bench.json").write_text(json.dumps(report, indent=2))
    print(f"\n{accuracy.describe()}")
    print(
        f"identity stage {identity_s:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in json.loads(run[6]).items())}); "
        f"job {seconds:.1f} s; bridges cut {run[2]:,}, references refused {run[3]:,}"
    )
    print(f"report: {work / 'identity_bench.json'}")
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


def print_summary(settings: Settings, result) -> None:
    import duckdb

    from warehouse.connections import OFFLINE_CONFIG as DUCKDB_CONFIG
    from warehouse.ingest import quarantine_summary
    from warehouse.serving import current_version
    from warehouse.summary import segment_sizes, table_row_counts

    evaluations = result.get_asset_check_evaluations()
    passed = sum(e.passed for e in evaluations)
    failed = [e for e in evaluations if not e.passed]
    warned = [e for e in failed if e.severity.value == "WARN"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True, config=DUCKDB_CONFIG) as con:
        counts = table_row_counts(con)
        sizes = segment_sizes(con)
        quarantine = quarantine_summary(con)
    print("Rows per layer")
    current = None
    for schema, table, n in counts:
        if schema != current:
            print(f"  {schema}")
            current = schema
        print(f"    {table:<38} {n:>12,}")
    print(f"\nChecks: {passed} passed, {len(warned)} warned, {len(failed) - len(warned)} failed")
    for e in failed:
        print(f"  {e.severity.value.lower():<5} {e.asset_key.to_user_string()} / {e.check_name}")
    if quarantine:
        print(f"\nQuarantine: {sum(q[2] for q in quarantine):,} rows")
        for table, kind, n in quarantine[:12]:
            print(f"  {table:<18} {kind:<20} {n:>8,}")
    if sizes:
        print("\nSegments per family (segments.customer_segments; profiles in segments.segment_profiles)")
        family = None
        for fam, model, version, name, n, share in sizes:
            if fam != family:
                source = "alias champion" if model == "customer_segmentation" else "rule table"
                print(f"  {fam} ({model} v{version}, {source})")
                family = fam
            print(f"    {name:<38} {n:>9,}  {share:6.1%}")
    print(
        "\nWhere to look\n"
        f"  warehouse      {settings.warehouse_path}  (pipeline only; BI opens the serving copy)\n"
        f"  serving (BI)   {settings.serving_dir / 'bi.duckdb'}  "
        f"(open read-only; version {current_version(settings.serving_dir) or 'none yet'}; "
        f"Parquet in {settings.serving_dir / 'current' / 'parquet'})\n"
        f"  MLflow         {settings.mlflow_tracking_uri}  (artifacts: {settings.mlflow_artifacts_dir})\n"
        f"  Dagster runs   {settings.dagster_home}\n"
        f"  validation     {settings.home / 'reports' / result.run_id / 'index.html'}\n"
        "  UIs            segments ui  (Dagster http://127.0.0.1:3000, MLflow http://127.0.0.1:5000)"
    )


def cmd_import_online_retail(args: argparse.Namespace) -> int:
    from warehouse.importers.online_retail import import_online_retail

    try:
        summary = import_online_retail(Path(args.source), Path(args.out))
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    import duckdb

    from warehouse.connections import OFFLINE_CONFIG as DUCKDB_CONFIG
    from warehouse.ingest import quarantine_summary

    settings = get_settings()
    if not settings.warehouse_path.exists():
        print(f"no warehouse at {settings.warehouse_path}: run `segments run` first", file=sys.stderr)
        return 2
    with duckdb.connect(str(settings.warehouse_path), read_only=True, config=DUCKDB_CONFIG) as con:
        rows = quarantine_summary(con)
    if not rows:
        print("quarantine is empty")
    for table, kind, n in rows:
        print(f"{table:<20} {kind:<20} {n:>9,}")
    return 0


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_ui(args: argparse.Namespace) -> int:
    settings = _prepare_environment(None)
    from ml.model_registry import ensure_tracking_db

    ensure_tracking_db(settings.mlflow_db_path)
    bin_dir = Path(sys.executable).parent
    procs = [
        subprocess.Popen(
            [
                str(bin_dir / "dagster"),
                "dev",
                "-w",
                str(PROJECT_ROOT / "workspace.yaml"),
                "-h",
                args.host,
                "-p",
                str(args.dagster_port),
            ],
            cwd=PROJECT_ROOT,
        ),
        subprocess.Popen(
            [
                str(bin_dir / "mlflow"),
                "ui",
                "--backend-store-uri",
                settings.mlflow_tracking_uri,
                "--host",
                args.host,
                "--port",
                str(args.mlflow_port),
            ]
        ),
    ]
    # Stop both UIs on Ctrl-C and on SIGTERM alike.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    print(
        f"Dagster UI: http://{args.host}:{args.dagster_port}   "
        f"MLflow UI: http://{args.host}:{args.mlflow_port}   (Ctrl-C stops both)"
    )
    try:
        for p in procs:
            p.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write demo landing files and ground truth")
    g.add_argument("--customers", type=int, default=20_000)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--out", required=True)
    g.add_argument(
        "--next-period",
        action="store_true",
        help="add the next period's orders to the demo in --out (a second delivery)",
    )
    g.add_argument("--days", type=int, default=21, help="length of the next period (with --next-period)")
    g.add_argument("--orders-per-customer", type=float, default=6.0, help="mean orders per person (default 6)")
    g.add_argument("--lines-per-order", type=float, default=2.0, help="mean lines per order (default 2)")
    g.add_argument(
        "--tickets-per-customer", type=float, default=0.5, help="mean support tickets per person (default 0.5)"
    )
    g.add_argument("--duplicate-rate", type=float, default=0.10, help="share of persons with a duplicate CRM record")
    g.set_defaults(func=cmd_generate)
    d = sub.add_parser("docs", help="generate the dbt docs site (lineage, exposures) offline and say where it is")
    d.set_defaults(func=cmd_docs)
    r = sub.add_parser("run", help="materialize the whole pipeline in-process")
    r.add_argument("--landing", help="landing folder (default: $SEGMENTS_LANDING or $SEGMENTS_HOME/landing)")
    r.add_argument(
        "--definition",
        help="segment definition YAML (default: ml/segmentation/definitions/behavioural_segmentation.yaml)",
    )
    r.add_argument(
        "--force",
        action="store_true",
        help=(
            "rebuild everything even when no landing file is new (e.g. after changing a dbt model); "
            "implied by --definition"
        ),
    )
    r.set_defaults(func=cmd_run)
    i = sub.add_parser("import", help="convert a public data set into the landing layout")
    imp = i.add_subparsers(dest="dataset", required=True)
    io = imp.add_parser("online-retail", help="UCI Online Retail II (two parquet files) -> erp/* landing files")
    io.add_argument(
        "--source",
        required=True,
        help="folder with online_retail_ii_2009_2010.parquet and online_retail_2010_2011.parquet",
    )
    io.add_argument("--out", required=True, help="landing folder to write")
    io.set_defaults(func=cmd_import_online_retail)
    q = sub.add_parser("quarantine", help="summarise quarantined rows")
    q.set_defaults(func=cmd_quarantine)
    b = sub.add_parser("bench", help="measure a stage against the generator's ground truth")
    bench = b.add_subparsers(dest="bench", required=True)
    bi = bench.add_parser("identity", help="identity resolution: pairwise precision/recall/F1, cluster accuracy, time")
    bi.add_argument("--customers", type=int, default=100_000)
    bi.add_argument("--seed", type=int, default=7)
    bi.add_argument("--workdir", help="where data and the run go (default data/bench/identity-N; data is reused)")
    bi.set_defaults(func=cmd_bench_identity)
    bs = bench.add_parser(
        "segmentation", help="whole pipeline: segments vs planted segments (ARI), model metrics, time"
    )
    bs.add_argument("--customers", type=int, default=100_000)
    bs.add_argument("--seed", type=int, default=7)
    bs.add_argument("--workdir", help="where data and the run go (default data/bench/segmentation-N; data is reused)")
    bs.set_defaults(func=cmd_bench_segmentation)
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

    u = sub.add_parser("ui", help="start the Dagster and MLflow UIs")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--dagster-port", type=int, default=3000)
    u.add_argument("--mlflow-port", type=int, default=5000)
    u.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
