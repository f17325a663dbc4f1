"""`segments import online-retail` (a public data set -> landing layout) and `segments quarantine`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestration.settings import get_settings


def add_import_parser(sub) -> None:
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


def add_quarantine_parser(sub) -> None:
    q = sub.add_parser("quarantine", help="what was rejected, by table and reason; filters; where to look")
    q.add_argument("--table", help="one raw table, e.g. erp.orders")
    q.add_argument("--reason", help="one reason kind, e.g. duplicate_key")
    q.add_argument("--file", help="one landing file, as the ledger names it (relative path)")
    q.add_argument("--open", action="store_true", help="only rows no later delivery has corrected")
    q.add_argument("--rows", type=int, default=0, help="also list the first N rows: file, record number, reason")
    q.set_defaults(func=cmd_quarantine)


def cmd_import_online_retail(args: argparse.Namespace) -> int:
    from warehouse.importers.online_retail import import_online_retail

    try:
        summary = import_online_retail(Path(args.source), Path(args.out))
    except (FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    from warehouse.connections import connect
    from warehouse.ingest import quarantine_summary, quarantined_rows

    settings = get_settings()
    if not settings.warehouse_path.exists():
        print(f"no warehouse at {settings.warehouse_path}: run `segments run` first", file=sys.stderr)
        return 2
    filters = {"table": args.table, "reason": args.reason, "file": args.file, "open_only": args.open}
    with connect(settings.warehouse_path, read_only=True) as con:
        rows = quarantine_summary(con, **filters)
        listed = quarantined_rows(con, args.rows, **filters) if args.rows > 0 else []
    if not rows:
        print("no quarantined row matches" if any(filters.values()) else "quarantine is empty")
    for table, kind, n, resolved in rows:
        print(
            f"{table:<20} {kind:<20} {n:>9,}" + (f"  ({resolved:,} corrected by a later delivery)" if resolved else "")
        )
    for table, file, record, reason, resolved_by in listed:
        print(f"  {table} {file} record {record}: {reason}" + (f" [corrected by {resolved_by}]" if resolved_by else ""))
    return 0
