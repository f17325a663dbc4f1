"""The segment report: one offline HTML page for operations and marketing, built from a published copy.

`build_report(version_dir)` reads a serving version folder (`$SEGMENTS_HOME/serving/versions/<v>/`, its
`bi.duckdb` opened read-only; never the warehouse) and writes a self-contained page: segment sizes now
and over time, profiles, the rules in plain words, the latest run's moves, alerts, playbook actions and
their measured lift, and the predictive tiers. Pure Python on DuckDB: no Dagster, no network, no script
in the page. `segments report` (orchestration/cli/report.py) is its command.
"""

from __future__ import annotations

import os
from pathlib import Path

from report.data import ReportData, ReportError, load_report_data
from report.page import render_page

REPORT_FILE = "report.html"


def build_report(version_dir: Path, out_path: Path | None = None) -> Path:
    """Write the report of the published version in `version_dir` to `out_path` (default
    `version_dir / "report.html"`) and return that path. The file is replaced atomically, so a browser
    or a web server never reads half a page; the same publication gives the same bytes."""
    version_dir = Path(version_dir)
    out = Path(out_path) if out_path is not None else version_dir / REPORT_FILE
    html = render_page(load_report_data(version_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(html.encode("utf-8"))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


__all__ = ["REPORT_FILE", "ReportData", "ReportError", "build_report", "load_report_data", "render_page"]
