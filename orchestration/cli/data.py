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
    q = sub.add_parser("quarantine", help="summarise quarantined rows")
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
    from warehouse.ingest import quarantine_summary

    settings = get_settings()
    if not settings.warehouse_path.exists():
        print(f"no warehouse at {settings.warehouse_path}: run `segments run` first", file=sys.stderr)
        return 2
    with connect(settings.warehouse_path, read_only=True) as con:
        rows = quarantine_summary(con)
    if not rows:
        print("quarantine is empty")
    for table, kind, n in rows:
        print(f"{table:<20} {kind:<20} {n:>9,}")
    return 0
