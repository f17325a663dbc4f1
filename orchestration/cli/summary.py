"""What `segments run` prints after the run: rows per layer, checks, quarantine, segments, where to look."""

from __future__ import annotations

import sys
from typing import TextIO

from orchestration.settings import Settings


def print_summary(settings: Settings, result, out: TextIO | None = None) -> None:
    """The summary of a finished run (`result`: its `ExecuteInProcessResult`), read from the warehouse."""
    from ml.identity.store import run_report
    from ml.model_registry import CHAMPION, SEGMENTATION_MODEL
    from warehouse.connections import connect
    from warehouse.ingest import quarantine_summary
    from warehouse.serving import current_version
    from warehouse.summary import segment_sizes, table_row_counts

    out = out or sys.stdout
    evaluations = result.get_asset_check_evaluations()
    passed = sum(e.passed for e in evaluations)
    failed = [e for e in evaluations if not e.passed]
    warned = [e for e in failed if e.severity.value == "WARN"]
    with connect(settings.warehouse_path, read_only=True) as con:
        counts = table_row_counts(con)
        sizes = segment_sizes(con)
        quarantine = quarantine_summary(con)
        identity = run_report(con, result.run_id)
    print("Rows per layer", file=out)
    current = None
    for schema, table, n in counts:
        if schema != current:
            print(f"  {schema}", file=out)
            current = schema
        print(f"    {table:<38} {n:>12,}", file=out)
    print(f"\nChecks: {passed} passed, {len(warned)} warned, {len(failed) - len(warned)} failed", file=out)
    for e in failed:
        print(f"  {e.severity.value.lower():<5} {e.asset_key.to_user_string()} / {e.check_name}", file=out)
    if quarantine:
        print(f"\nQuarantine: {sum(q[2] for q in quarantine):,} rows", file=out)
        for table, kind, n in quarantine[:12]:
            print(f"  {table:<18} {kind:<20} {n:>8,}", file=out)
    if identity:
        print_identity(identity, settings, out)
    if sizes:
        print("\nSegments per family (segments.customer_segments; profiles in segments.segment_profiles)", file=out)
        family = None
        for fam, model, version, name, n, share in sizes:
            if fam != family:
                source = f"alias {CHAMPION}" if model == SEGMENTATION_MODEL else "rule table"
                print(f"  {fam} ({model} v{version}, {source})", file=out)
                family = fam
            print(f"    {name:<38} {n:>9,}  {share:6.1%}", file=out)
    print(
        "\nWhere to look\n"
        f"  warehouse      {settings.warehouse_path}  (pipeline only; BI opens the serving copy)\n"
        f"  serving (BI)   {settings.serving_dir / 'bi.duckdb'}  "
        f"(open read-only; version {current_version(settings.serving_dir) or 'none yet'}; "
        f"Parquet in {settings.serving_dir / 'current' / 'parquet'})\n"
        f"  MLflow         {settings.mlflow_tracking_uri}  (artifacts: {settings.mlflow_artifacts_dir})\n"
        f"  Dagster runs   {settings.dagster_home}\n"
        f"  validation     {settings.home / 'reports' / result.run_id / 'index.html'}\n"
        "  UIs            segments ui  (Dagster http://127.0.0.1:3000, MLflow http://127.0.0.1:5000)",
        file=out,
    )


def print_identity(report: dict, settings: Settings, out: TextIO) -> None:
    """The identity section: what was resolved, compared and linked at, what stayed alone and what waits for review."""
    linkage = report["linkage"]
    threshold = linkage.get("match_threshold") or {}
    blocking = linkage.get("blocking_rules", {})
    print(
        f"\nIdentity: {report['records']:,} records -> {report['customers']:,} customers "
        f"({report['merges']:,} merges, {report['splits']:,} splits"
        f"{'' if report['applied'] else '; NOT applied: churn over its bound'})",
        file=out,
    )
    if linkage.get("comparisons"):
        print(
            f"  compared   {', '.join(linkage['comparisons'])}; {len(blocking)} blocking rule(s), "
            f"{sum(blocking.values()):,} pairs; {linkage.get('pairs_scored', 0):,} scored at or above the review floor",
            file=out,
        )
    if threshold:
        print(f"  threshold  {threshold['value']:.4f} ({threshold['source']})", file=out)
    guards = linkage.get("guards", {})
    off = [g.replace("_", " ") for g in ("given_names", "birth_dates") if guards.get(g) is False]
    if off:
        print(f"  guards off {', '.join(off)}: the data contradicts itself there too often to veto links", file=out)
    for note in [*linkage.get("skipped", []), *linkage.get("notes", [])]:
        print(f"  note       {note}", file=out)
    overrides = linkage.get("overrides") or {}
    if overrides.get("decisions"):
        unknown = overrides.get("unknown_records", 0)
        print(
            f"  overrides  {overrides['links']} link, {overrides['never_links']} never-link"
            + (f", {unknown} naming records this data does not hold" if unknown else "")
            + f" ({overrides['path']})",
            file=out,
        )
    unlinked = linkage.get("unlinked") or {}
    if unlinked.get("single_record_customers"):
        parts = [
            f"{source}: " + ", ".join(f"{n:,} {evidence}" for evidence, n in kinds.items())
            for source, kinds in unlinked.get("single_record_customers_by_source", {}).items()
        ]
        print(
            f"  alone      {unlinked['single_record_customers']:,} customers of one record ({'; '.join(parts)})",
            file=out,
        )
    for what, n in (unlinked.get("not_candidates") or {}).items():
        if n:
            print(f"  not linked {n:,} {what}", file=out)
    waiting = report.get("review_waiting") or {}
    if waiting:
        print(
            f"  review     {sum(waiting.values()):,} waiting ({', '.join(f'{n:,} {k}' for k, n in waiting.items())}): "
            f"segments identity review; decisions go to {settings.identity_files_dir / 'overrides.csv'}",
            file=out,
        )
