"""`segments docs`: the dbt docs as one self-contained HTML file, built offline from the warehouse's catalog."""

from __future__ import annotations

import argparse
import sys

from orchestration.settings import get_settings


def add_parser(sub) -> None:
    d = sub.add_parser("docs", help="generate the dbt docs site (lineage, exposures) offline and say where it is")
    d.set_defaults(func=cmd_docs)


def cmd_docs(args: argparse.Namespace) -> int:
    """dbt docs as one self-contained HTML file (lineage from sources to exposures), built offline."""
    from orchestration.dbt import run_dbt

    settings = get_settings()
    if not settings.warehouse_path.exists():
        print(
            f"no warehouse at {settings.warehouse_path}: run `segments run` first (the docs read its catalog)",
            file=sys.stderr,
        )
        return 2
    target = settings.home / "docs"
    proc = run_dbt(["docs", "generate", "--static", "--quiet", "--target-path", str(target)], settings.warehouse_path)
    page = target / "static_index.html"
    if proc.returncode != 0 or not page.exists():
        print(f"dbt docs generate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}", file=sys.stderr)
        return 1
    print(f"dbt docs (one self-contained file, works offline): {page}\n  open it in a browser: file://{page}")
    return 0
