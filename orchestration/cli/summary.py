"""What `segments run` prints after the run: rows per layer, checks, quarantine, segments, where to look."""

from __future__ import annotations

import sys
from typing import TextIO

from orchestration.settings import Settings


def _value(metadata: dict, key: str):
    entry = metadata.get(key)
    return getattr(entry, "value", entry)


def explain_check(evaluation) -> list[str]:
    """What a failed check found, in numbers, and what to do (no row values: they may be personal data)."""
    md = evaluation.metadata or {}
    name = evaluation.check_name
    if _value(md, "failures") is not None:  # the promotion gate
        champion = _value(md, "champion_version") or "none"
        return [
            f"challenger v{_value(md, 'challenger_version')} not promoted: " + "; ".join(_value(md, "failures")),
            f"the champion ({'v' + champion if champion != 'none' else 'none yet'}) keeps scoring. Look at the "
            "challenger's segment profiles in MLflow; a tiny segment is often customers whose data was "
            "quarantined (`segments quarantine`). To accept such models, change promotion_gates in the "
            "definition, bump its version and run `segments definitions lock`.",
        ]
    results = _value(md, "results")
    if results is not None:  # a GX suite
        failed = [r for r in results if not r.get("success")]
        lines = [
            f"{r['expectation']}({r.get('column') or ''}): "
            + (
                f"{r['unexpected_count']:,} unexpected of {_value(md, 'rows_validated') or 0:,} rows validated"
                if r.get("unexpected_count")
                else f"observed {r.get('observed')}"
            )
            + f" ({r.get('severity')})"
            for r in failed[:6]
        ]
        return lines + [f"report: {_value(md, 'report')}"]
    if name == "every_file_reconciles" or _value(md, "files") is not None:
        return [f"{k}: {_value(md, k)}" for k in sorted(md) if k != "files"][:6]
    return [f"{k}: {_value(md, k)}" for k in sorted(md)][:6]


def run_warnings(settings: Settings, result) -> list[str]:
    """What a succeeded run did not do and why: training skipped, checks that failed, families that
    placed nobody. The command line says `succeeded with N warning(s)` and lists them."""
    from orchestration.defs.ml.assets import customer_segmentation
    from warehouse.connections import connect
    from warehouse.summary import family_placement

    warnings = []
    try:
        trained = result.asset_materializations_for_node(customer_segmentation.op.name)
    except Exception:  # the node is not in this job
        trained = []
    for m in trained:
        if _value(m.metadata, "reason"):
            warnings.append(
                f"training skipped: {_value(m.metadata, 'reason')} (fallback reasons: "
                f"{_value(m.metadata, 'fallback_customers')}). Customers need a lawful basis for profiling "
                "(segments.yaml lawful_basis; see docs/projects.md) and min_orders completed orders."
            )
    for e in result.get_asset_check_evaluations():
        if not e.passed:
            warnings.append(
                f"check {e.asset_key.to_user_string()} / {e.check_name} failed ({e.severity.value.lower()}): "
                f"{explain_check(e)[0]}"
            )
    if settings.warehouse_path.exists():
        with connect(settings.warehouse_path, read_only=True) as con:
            placement = family_placement(con)
        for family, customers, placed, reasons in placement:
            lineless = dict(reasons).get("incomplete_order_data")
            if lineless:
                warnings.append(
                    f"data problem: {lineless:,} customers' completed orders all lack their lines (quarantined): "
                    f"not segmented in {family} (segments quarantine --table erp.order_lines)"
                )
            if customers and not placed:
                why = ", ".join(f"{reason} {n:,}" for reason, n in reasons)
                warnings.append(f"segment family {family} placed nobody: all {customers:,} customers fell back ({why})")
    return warnings


def print_summary(settings: Settings, result, out: TextIO | None = None, warnings: list[str] | None = None) -> None:
    """The summary of a finished run (`result`: its `ExecuteInProcessResult`), read from the warehouse."""
    from ml.identity.store import run_report
    from ml.model_registry import CHAMPION
    from ml.segmentation.rfm import FAMILY as RFM_FAMILY
    from warehouse.connections import connect
    from warehouse.ingest import quarantine_summary
    from warehouse.serving import current_version
    from warehouse.summary import playbook_lift, prediction_summary, profiling_bases, segment_sizes, table_row_counts

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
        bases = profiling_bases(con)
        lift = playbook_lift(con)
        predictions = prediction_summary(con)
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
        for line in explain_check(e):
            print(f"        {line}", file=out)
    if quarantine:
        resolved = sum(q[3] for q in quarantine)
        print(
            f"\nQuarantine: {sum(q[2] for q in quarantine):,} rows"
            + (f" ({resolved:,} corrected by a later delivery)" if resolved else "")
            + " (segments quarantine --table T --reason R --rows N)",
            file=out,
        )
        for table, kind, n, _ in quarantine[:12]:
            print(f"  {table:<18} {kind:<20} {n:>8,}", file=out)
    if identity:
        print_identity(identity, settings, out)
    if bases:
        print(
            "\nLawful basis for profiling (marts.customers.profiling_basis): "
            + ", ".join(f"{basis} {n:,}" for basis, n in bases),
            file=out,
        )
    if sizes:
        print("\nSegments per family (segments.customer_segments; profiles in segments.segment_profiles)", file=out)
        family = None
        for fam, model, version, name, n, share in sizes:
            if fam != family:
                source = "rule table" if fam == RFM_FAMILY else f"alias {CHAMPION}"
                print(f"  {fam} ({model} v{version}, {source})", file=out)
                family = fam
            print(f"    {name:<38} {n:>9,}  {share:6.1%}", file=out)
    if predictions and predictions["customers"]:
        p = predictions
        print(
            f"\nPredictions (ml.customer_predictions; churn_model v{p['churn_model_version'] or '-'}, value_model "
            f"v{p['value_model_version'] or '-'}, prediction {p['definition_version']})",
            file=out,
        )
        if p["predicted"]:
            print(
                f"  {p['predicted']:,} of {p['customers']:,} customers: mean churn risk "
                f"{p['mean_churn_probability']:.1%} over {p['horizon_days']} days, expected revenue "
                f"{p['expected_revenue_base']:,.0f} (base currency)",
                file=out,
            )
        if p["not_predicted"]:
            print("  not predicted: " + ", ".join(f"{r} {n:,}" for r, n in p["not_predicted"]), file=out)
    if lift:
        print(
            f"\nPlaybook lift (segments.playbook_lift): purchase rate within {lift[0]['lift_window_days']} days "
            "of the action, treated - holdout, 95% CI",
            file=out,
        )
        for row in lift:
            print(f"  {row['action_name']:<24} {lift_line(row)}", file=out)
    if warnings:
        print(f"\nWarnings ({len(warnings)})", file=out)
        for line in warnings:
            print(f"  {line}", file=out)
    print(
        "\nWhere to look\n"
        f"  warehouse      {settings.warehouse_path}  (pipeline only; BI opens the serving copy)\n"
        f"  serving (BI)   {settings.serving_dir / 'bi.duckdb'}  "
        f"(open read-only; version {current_version(settings.serving_dir) or 'none yet'}; "
        f"Parquet in {settings.serving_dir / 'current' / 'parquet'})\n"
        f"  MLflow         {settings.mlflow_tracking_uri}  (artifacts: {settings.mlflow_artifacts_dir})\n"
        f"  Dagster runs   {settings.dagster_home}\n"
        f"  segment report {_segment_report(settings)}\n"
        f"  validation     {settings.home / 'reports' / result.run_id / 'index.html'}\n"
        f"  UIs            segments ui  (Dagster {settings.dagster_ui_url}, MLflow {settings.mlflow_ui_url}, "
        f"reports {settings.reports_url})",
        file=out,
    )


def lift_line(row: dict) -> str:
    """One action of segments.playbook_lift: its purchase-rate lift in percentage points with the interval and
    the group sizes, or why there is none yet."""
    waiting = (
        f"; {row['open_windows']:,} open, the next closes {row['next_window_end_date']}" if row["open_windows"] else ""
    )
    if row["lift_status"] == "no_closed_window":
        return f"no lift yet: no window has closed{waiting}"
    groups = f"treated {row['treated_customers']:,}, holdout {row['holdout_customers']:,}"
    if row["purchase_rate_lift_ci_low"] is None:
        return f"no lift: {groups} (a group has fewer than 2){waiting}"
    measured = (
        f"{100 * row['purchase_rate_lift']:+.1f} pts [{100 * row['purchase_rate_lift_ci_low']:+.1f}, "
        f"{100 * row['purchase_rate_lift_ci_high']:+.1f}]  {groups}"
    )
    if row["lift_status"] == "measured":
        return measured + waiting
    group = "holdout" if row["lift_status"] == "too_few_holdout" else "treated"
    return f"too few {group} customers (< {row['min_group_customers']}) to say: {measured}{waiting}"


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


def _segment_report(settings) -> str:
    """The current publication's segment report (built by the publishing step), or why there is none."""
    page = settings.serving_dir / "current" / "report.html"
    return f"{page.resolve()}  (segments report --serve)" if page.is_file() else "none yet (nothing published)"
