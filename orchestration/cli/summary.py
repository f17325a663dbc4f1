"""What `segments run` prints after the run: rows per layer, checks, quarantine, segments, where to look."""

from __future__ import annotations

import sys
from typing import TextIO

from orchestration.settings import Settings


def print_summary(settings: Settings, result, out: TextIO | None = None) -> None:
    """The summary of a finished run (`result`: its `ExecuteInProcessResult`), read from the warehouse."""
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
