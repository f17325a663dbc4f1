"""A self-contained HTML validation report (GX Data Docs need CDNs and render broken offline).

Each suite's outcome is written as `<suite>.html` into the run's report folder, and `index.html` is
rebuilt from every outcome in that folder, so a person opens one page per run.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from expectations.validate import ValidationOutcome

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px;vertical-align:top}
.ok{color:#137333}.error{color:#b3261e;font-weight:bold}.warn{color:#a05a00;font-weight:bold}code{font-size:12px}"""


def _status(outcome: dict) -> str:
    if outcome["failed_error"]:
        return '<span class="error">FAILED</span>'
    if outcome["failed_warn"]:
        return '<span class="warn">WARNED</span>'
    return '<span class="ok">passed</span>'


def _result_cell(result: dict) -> str:
    if result["success"]:
        return '<span class="ok">ok</span>'
    severity = html.escape(result["severity"])
    return f'<span class="{severity}">{severity}</span>'


def write_suite_report(folder: Path, outcome: ValidationOutcome, rows: int) -> Path:
    """Write `<suite>.json` and `<suite>.html`, refresh `index.html`; returns the index path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "suite": outcome.suite,
        "rows": rows,
        "passed": outcome.passed,
        "failed_error": outcome.failed_error,
        "failed_warn": outcome.failed_warn,
        "results": outcome.results_as_dicts(),
    }
    (folder / f"{outcome.suite}.json").write_text(json.dumps(data, default=str, indent=1))
    rows_html = "".join(
        f"<tr><td>{_result_cell(r)}</td>"
        f"<td>{html.escape(r['expectation'])}</td><td>{html.escape(str(r['column'] or ''))}</td>"
        f"<td>{html.escape(str(r['unexpected_count'] if r['unexpected_count'] is not None else ''))}</td>"
        "<td><code>"
        f"{html.escape(json.dumps(r['unexpected_examples'] or r['observed'], default=str)[:300])}"
        "</code></td></tr>"
        for r in data["results"]
    )
    page = (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(outcome.suite)}</title><style>{STYLE}</style>"
        f"<p><a href='index.html'>all suites of this run</a></p><h1>{html.escape(outcome.suite)} {_status(data)}</h1>"
        f"<p>{rows:,} rows validated; {data['passed']} expectations passed, {data['failed_error']} failed (error), "
        f"{data['failed_warn']} failed (warn).</p><table><tr><th>result</th><th>expectation</th><th>column</th>"
        f"<th>unexpected</th><th>examples / observed</th></tr>{rows_html}</table>"
    )
    (folder / f"{outcome.suite}.html").write_text(page, encoding="utf-8")
    return write_index(folder)


def write_index(folder: Path) -> Path:
    suites = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    rows = "".join(
        f"<tr><td><a href='{html.escape(s['suite'])}.html'>{html.escape(s['suite'])}</a></td><td>{_status(s)}</td>"
        f"<td>{s['rows']:,}</td><td>{s['passed']}</td><td>{s['failed_error']}</td><td>{s['failed_warn']}</td></tr>"
        for s in suites
    )
    page = (
        f"<!doctype html><meta charset=utf-8><title>Validation report {html.escape(folder.name)}</title>"
        f"<style>{STYLE}</style>"
        f"<h1>Validation report</h1><p>Run <code>{html.escape(folder.name)}</code>: {len(suites)} suites.</p>"
        "<table><tr><th>suite</th><th>status</th><th>rows</th><th>passed</th>"
        "<th>failed (error)</th><th>failed (warn)</th></tr>"
        f"{rows}</table>"
    )
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
