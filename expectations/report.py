"""A self-contained HTML validation report (GX Data Docs need CDNs and render broken offline).

Each suite's outcome is written as `<suite>.html` into the run's report folder, and `index.html` is
rebuilt from every outcome in that folder, so a person opens one page per run.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
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


@dataclass(frozen=True)
class ReportContext:
    """Where a suite's validation belongs: the run (its id and page), when it was validated and which rows."""

    run_id: str
    validated_at: str  # UTC, ISO 8601
    scope: str  # `QueryValidation.scope`: every row, or which sample
    run_url: str | None = None


def _run_line(context: dict) -> str:
    run = html.escape(context["run_id"])
    link = f"<a href='{html.escape(context['run_url'])}'>{run}</a>" if context.get("run_url") else run
    return f"Dagster run <code>{link}</code>, validated {html.escape(context['validated_at'])} UTC"


def write_suite_report(folder: Path, outcome: ValidationOutcome, rows: int, context: ReportContext) -> Path:
    """Write `<suite>.json` and `<suite>.html`, refresh `index.html`; returns the index path. The pages say
    which rows were validated (every one or a sample, and how it was drawn), in which run and when."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "suite": outcome.suite,
        "rows": rows,
        "passed": outcome.passed,
        "failed_error": outcome.failed_error,
        "failed_warn": outcome.failed_warn,
        "results": outcome.results_as_dicts(),
        "context": asdict(context),
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
        f"<p>{_run_line(data['context'])}.</p>"
        f"<p>Validated {html.escape(context.scope)}; {data['passed']} expectations passed, {data['failed_error']} "
        f"failed (error), {data['failed_warn']} failed (warn).</p><table><tr><th>result</th><th>expectation</th>"
        f"<th>column</th><th>unexpected</th><th>examples / observed</th></tr>{rows_html}</table>"
    )
    (folder / f"{outcome.suite}.html").write_text(page, encoding="utf-8")
    return write_index(folder)


def write_index(folder: Path) -> Path:
    suites = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    rows = "".join(
        f"<tr><td><a href='{html.escape(s['suite'])}.html'>{html.escape(s['suite'])}</a></td><td>{_status(s)}</td>"
        f"<td>{html.escape(s['context']['scope'])}</td><td>{s['passed']}</td><td>{s['failed_error']}</td>"
        f"<td>{s['failed_warn']}</td><td>{html.escape(s['context']['validated_at'])}</td></tr>"
        for s in suites
    )
    run = _run_line(suites[0]["context"]).split(", validated")[0] if suites else html.escape(folder.name)
    page = (
        f"<!doctype html><meta charset=utf-8><title>Validation report {html.escape(folder.name)}</title>"
        f"<style>{STYLE}</style>"
        f"<h1>Validation report</h1><p>{run}: {len(suites)} suites. Above SEGMENTS_GX_SAMPLE_ROWS rows a suite "
        "validates a seeded sample, said per suite.</p>"
        "<table><tr><th>suite</th><th>status</th><th>rows validated</th><th>passed</th>"
        "<th>failed (error)</th><th>failed (warn)</th><th>validated at (UTC)</th></tr>"
        f"{rows}</table>"
    )
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
