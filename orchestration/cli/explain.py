"""`segments explain CUSTOMER`: from a published segment row to everything that produced it, in one command.

For each segment family of the customer: the segment, the rule that placed them, the definition version, the
model version with its MLflow run, training data digest, the Dagster run, code and dbt manifest that trained it
(links to both UIs); the dbt models `segments.customer_segments` is built from with their SQL checksums; and
the source records identity resolved into the customer, each with its landing file, row and ledger row.

It reads the warehouse read-only (not while a run writes it) and prints keys, versions, digests and file
names, never a name, e-mail, phone or address.
"""

from __future__ import annotations

import argparse
import re
import sys

from orchestration.settings import get_settings

# the dbt tables behind a segment row: the published table, and the features the models were trained on and score
DBT_TABLES = ("segments.customer_segments", "marts.customer_features")
# what a customer id can look like (the pipeline's `cus_<hex>` and a user's own keys), checked before any query
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


def add_parser(sub) -> None:
    e = sub.add_parser(
        "explain", help="one customer's segments back to the models, training data, dbt models and landing files"
    )
    e.add_argument("customer_id", help="a published customer id (as in segments.customer_segments)")
    e.add_argument("--models", action="store_true", help="also list every dbt model the segment table is built from")
    e.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    import duckdb

    from warehouse.connections import connect
    from warehouse.lineage import UnknownCustomer, customer_lineage

    if not CUSTOMER_ID.match(args.customer_id):
        print(f"error: not a customer id: {args.customer_id!r}", file=sys.stderr)
        return 2
    settings = get_settings()
    if not settings.warehouse_path.exists():
        print(f"error: no warehouse at {settings.warehouse_path}: run `segments run` first", file=sys.stderr)
        return 2
    try:
        with connect(settings.warehouse_path, read_only=True) as con:
            lineage = customer_lineage(con, args.customer_id)
    except UnknownCustomer as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except duckdb.IOException as err:
        print(f"error: the warehouse is busy (a run writes it): {str(err).splitlines()[0]}", file=sys.stderr)
        return 3
    for line in explain_lines(settings, lineage, all_models=args.models):
        print(line)
    return 0


def explain_lines(settings, lineage, *, all_models: bool = False) -> list[str]:
    """The explanation of `lineage` (warehouse.lineage.CustomerLineage) as printed lines."""
    from orchestration.dbt import manifest_path, upstream_models

    lines = [f"customer {lineage.customer_id}"]
    if lineage.asked_for != lineage.customer_id:
        lines[0] += f" (the id {lineage.asked_for} was merged into it by identity resolution)"
    lines += ["", "segments (segments.customer_segments)"]
    for row in lineage.segments:
        fallback = " [fallback]" if row.is_fallback else ""
        lines.append(f"  {row.family:<12} {row.segment_name} ({row.segment_key}){fallback}")
        lines.append(f"      why: {row.reason or '-'}")
        lines.append(f"      definition {row.definition_version}; assigned {row.assigned_at}")
        if row.dagster_run_id:
            lines.append(f"      scored by Dagster run {settings.dagster_run_url(row.dagster_run_id)}")
        lines += _model_lines(settings, row)
    manifest = manifest_path(settings.home)
    if manifest.exists():
        models = upstream_models(manifest, list(DBT_TABLES))
        lines += [
            "",
            f"dbt: {' and '.join(DBT_TABLES)} (the features the models read and score) are built from "
            f"{len(models) - len(DBT_TABLES)} models and seeds",
        ]
        for relation, kind, path, checksum in models if all_models else models[: len(DBT_TABLES)]:
            lines.append(f"  {relation:<48} {kind:<6} {path}  sha256 {checksum[:16]}")
        if not all_models:
            lines.append("  (--models lists them all with their SQL checksums)")
    lines += ["", f"source records ({len(lineage.records)}, identity.customer_source_records)"]
    for record in lineage.records:
        probability = f", p={record.match_probability:.3f}" if record.match_probability is not None else ""
        lines.append(f"  {record.record_id}  matched on {record.matched_on or '-'}{probability}  <- {record.raw_table}")
        for raw in record.rows:
            ledger = f"ledger: {raw.ledger_status}, run {raw.run_id}" if raw.run_id else "ledger: no row"
            lines.append(f"      {raw.source_file} row {raw.source_row}  sha256 {raw.file_sha256[:16]}  ({ledger})")
        if record.more_rows:
            lines.append(f"      ... and {record.more_rows} more rows")
    return lines


def _model_lines(settings, row) -> list[str]:
    """The registered model versions that placed `row` (`name` / `version`, or `a+b` / `1+2` for a family
    placed by two models, the predictive one); a family of rules (RFM) has none."""
    names, versions = (row.model_name or "").split("+"), (row.model_version or "").split("+")
    if len(names) != len(versions) or not all(v.isdigit() for v in versions):
        return [
            f"      model: {row.model_name or '-'} {row.model_version or ''} (versioned rules, no registered model)"
        ]
    return [
        line for name, version in zip(names, versions, strict=True) for line in _version_lines(settings, name, version)
    ]


def _version_lines(settings, name: str, version: str) -> list[str]:
    from mlflow.exceptions import MlflowException

    from ml.model_registry import DAGSTER_RUN_TAG, TRAINING_DATA_DIGEST, model_version_page, run_page, version_lineage

    try:
        lineage = version_lineage(settings.mlflow_tracking_uri, name, version)
    except MlflowException:
        return [f"      model {name} v{version}: not in the MLflow registry"]
    aliases = f" @{', @'.join(lineage.aliases)}" if lineage.aliases else ""
    tags = lineage.tags
    trained_by = tags.get(DAGSTER_RUN_TAG)
    return [
        f"      model {name} v{version}{aliases}: {model_version_page(settings.mlflow_ui_url, name, version)}",
        f"        MLflow run {run_page(settings.mlflow_ui_url, lineage.experiment_id, lineage.run_id)}",
        f"        training data digest {tags.get(TRAINING_DATA_DIGEST, '-')}; "
        f"git {tags.get('git_sha', '-')[:12]}; dbt manifest {tags.get('dbt_manifest_sha', '-')[:16]}",
        f"        trained by Dagster run {settings.dagster_run_url(trained_by) if trained_by else '-'}",
    ]
