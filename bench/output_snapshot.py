"""A fingerprint of everything a pipeline run produced, to prove a refactoring changed no output.

    python -m bench.output_snapshot HOME > after.json
    python -m bench.output_snapshot --compare before.json after.json

The snapshot of a `SEGMENTS_HOME` holds, per warehouse table, its row count and an order-independent
digest of its content; the segment sizes per family and model version; the quarantine by table and
reason; the MLflow registry (versions, aliases, gate metrics); and every Dagster asset-check result.
Columns that differ between two runs of the same code by nature (timestamps, run ids, file paths under
the home, timings, MLflow run ids) are left out of the digests, and doubles are rounded, so two runs
of the same code on the same data give the same snapshot.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from pathlib import Path

import duckdb

# Columns whose values depend on when or where a run happened, not on what it computed (file times,
# timestamps, run ids, and the outbox ids hashed from a membership's start time).
VOLATILE = re.compile(
    r"(_at|_ns|_on_date|_date_run|run_id|runs?_id|valid_from|valid_to|due_date|timings|seconds|_source_file"
    r"|source_file|file_path|path|version_dir|splink_model|config|first_used|content_sha256|published"
    r"|^action_id|^alert_id)$"
)
SCHEMAS = (
    "crm",
    "erp",
    "support",
    "events",
    "audit",
    "reference",
    "staging",
    "intermediate",
    "marts",
    "identity",
    "ml",
    "segments",
)
# Doubles are compared at 4 decimals. DuckDB's parallel aggregates add doubles in no fixed order, so two runs of
# the same data differ in the last bits (measured: one customer's monetary_base by 4.5e-13 at 20k persons), and a
# rounded digest flips when a value sits that close to a rounding boundary: about difference / 10**-digits per
# value, so 4 decimals make a false difference 100 times rarer than 6 (at 6, one in ~10 fault scenarios at 20k).
DOUBLE_DIGITS = 4


def _table_digest(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict:
    columns = con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, table],
    ).fetchall()
    kept = [(c, t) for c, t in columns if not VOLATILE.search(c)]
    exprs = [
        f'round("{c}", {DOUBLE_DIGITS})::varchar' if t in ("DOUBLE", "FLOAT", "REAL") else f'"{c}"::varchar'
        for c, t in kept
    ]
    row = "concat_ws('\x1f', " + ", ".join(f"coalesce({e}, '\x00')" for e in exprs) + ")" if exprs else "''"
    rows, digest = con.execute(
        "select count(*), md5(coalesce(string_agg(h, '' order by h), '')) "
        f'from (select md5({row}) as h from "{schema}"."{table}")'
    ).fetchall()[0]
    return {"rows": rows, "digest": digest, "columns": [c for c, _ in kept]}


def _mlflow(db: Path) -> dict:
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        versions = con.execute(
            "select name, version, run_id from model_versions order by name, cast(version as integer)"
        ).fetchall()
        aliases = con.execute("select name, alias, version from registered_model_aliases order by 1, 2").fetchall()
        out = {"aliases": {f"{n}@{a}": str(v) for n, a, v in aliases}, "versions": {}}
        for name, version, run_id in versions:
            metrics = dict(
                con.execute(
                    "select key, value from latest_metrics where run_uuid = ? and key in "
                    "('silhouette', 'stability_ari', 'min_segment_share', 'surrogate_fidelity', 'davies_bouldin')",
                    [run_id],
                ).fetchall()
            )
            params = dict(
                con.execute(
                    "select key, value from params where run_uuid = ? and key in ('algorithm', 'k')", [run_id]
                ).fetchall()
            )
            out["versions"][f"{name}/{version}"] = {
                **params,
                **{k: round(v, DOUBLE_DIGITS) for k, v in sorted(metrics.items())},
            }
        return out
    finally:
        con.close()


def _checks(dagster_home: Path) -> dict:
    """Per run (in order) the asset-check results: `<asset> / <check>` -> passed | warn | error."""
    import dagster as dg

    if not (dagster_home / "dagster.yaml").exists():
        return {}
    out = {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for i, run in enumerate(reversed(instance.get_runs())):
            results = {}
            for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
                data = entry.dagster_event.event_specific_data
                verdict = "passed" if data.passed else (data.severity.value.lower() if data.severity else "error")
                results[f"{data.asset_key.to_user_string()} / {data.check_name}"] = verdict
            out[f"run {i + 1} ({run.job_name}, {run.status.value})"] = dict(sorted(results.items()))
    return out


def snapshot(home: Path) -> dict:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema in "
            f"({', '.join(repr(s) for s in SCHEMAS)}) order by 1, 2"
        ).fetchall()
        digests = {f"{s}.{t}": _table_digest(con, s, t) for s, t in tables}
        sizes = con.execute(
            "select segment_family, model_version, segment_name, count(*) from segments.customer_segments "
            "group by all order by 1, 2, 4 desc, 3"
        ).fetchall()
        quarantine = con.execute(
            "select source_table, reason_kind, count(*) from audit.quarantine group by all order by 1, 2"
        ).fetchall()
    finally:
        con.close()
    return {
        "tables": digests,
        "segment_sizes": {f"{f} v{v} / {n}": c for f, v, n, c in sizes},
        "quarantine": {f"{t} / {k}": n for t, k, n in quarantine},
        "mlflow": _mlflow(home / "mlflow.db"),
        "checks": _checks(home / "dagster"),
    }


def compare(before: dict, after: dict) -> list[str]:
    """Human-readable differences (empty when the snapshots match)."""
    diffs = []
    for section in ("segment_sizes", "quarantine", "mlflow", "checks"):
        if before.get(section) != after.get(section):
            diffs.append(f"{section}: {json.dumps(before.get(section))} != {json.dumps(after.get(section))}")
    for name in sorted(set(before["tables"]) | set(after["tables"])):
        b, a = before["tables"].get(name), after["tables"].get(name)
        if b != a:
            diffs.append(f"table {name}: {b} != {a}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", nargs="?", help="SEGMENTS_HOME to fingerprint (JSON on stdout)")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="two snapshot files to compare")
    args = parser.parse_args(argv)
    if args.compare:
        before, after = (json.loads(Path(p).read_text()) for p in args.compare)
        diffs = compare(before, after)
        tables = len(after["tables"])
        print("\n".join(diffs) if diffs else f"identical: {tables} tables, segment sizes, quarantine, registry, checks")
        return 1 if diffs else 0
    if not args.home:
        parser.error("give a SEGMENTS_HOME or --compare BEFORE AFTER")
    json.dump(snapshot(Path(args.home)), sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
