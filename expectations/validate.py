"""One entry point to validate a DataFrame against a GX 1.x suite in an ephemeral context.

Validation runs on pandas DataFrames read from DuckDB (GX through SQLAlchemy on DuckDB gives false
failures). Each expectation carries `meta["severity"]`: "error" failures block downstream,
"warn" failures are reported only.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

_CONTEXT = None


def _context():
    """One ephemeral GX context per process (creating it costs about a second)."""
    global _CONTEXT
    if _CONTEXT is None:
        os.environ["GX_ANALYTICS_ENABLED"] = "false"
        import great_expectations as gx

        _CONTEXT = gx.get_context(mode="ephemeral")
    return _CONTEXT


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    severity: str
    observed: Any = None
    unexpected_count: int | None = None
    unexpected_examples: list = field(default_factory=list)


@dataclass
class ValidationOutcome:
    suite: str
    success: bool
    results: list[ExpectationOutcome]

    @property
    def passed(self) -> int:
        return sum(r.success for r in self.results)

    @property
    def failed_error(self) -> int:
        return sum(not r.success and r.severity == "error" for r in self.results)

    @property
    def failed_warn(self) -> int:
        return sum(not r.success and r.severity == "warn" for r in self.results)

    @property
    def blocking(self) -> bool:
        return self.failed_error > 0

    def results_as_dicts(self) -> list[dict]:
        return [
            {
                "expectation": r.expectation,
                "column": r.column,
                "success": r.success,
                "severity": r.severity,
                "observed": _jsonable(r.observed),
                "unexpected_count": r.unexpected_count,
                "unexpected_examples": [_jsonable(v) for v in r.unexpected_examples],
            }
            for r in self.results
        ]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value][:20]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in list(value.items())[:20]}
    return str(value)


def validate(df: pd.DataFrame, suite) -> ValidationOutcome:
    """Validate `df` against `suite` (a gx.ExpectationSuite); never raises for failed expectations."""
    context = _context()
    name = f"frame_{uuid.uuid4().hex[:8]}"
    source = context.data_sources.add_pandas(name)
    try:
        batch_definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
    finally:
        context.data_sources.delete(name)
    outcomes = []
    for r in result.results:
        cfg = r.expectation_config
        res = r.result or {}
        outcomes.append(
            ExpectationOutcome(
                expectation=cfg.type,
                column=cfg.kwargs.get("column"),
                success=bool(r.success),
                severity=(cfg.meta or {}).get("severity", "error"),
                observed=res.get("observed_value"),
                unexpected_count=res.get("unexpected_count"),
                unexpected_examples=list(res.get("partial_unexpected_list") or [])[:5],
            )
        )
    return ValidationOutcome(suite=suite.name, success=bool(result.success), results=outcomes)


@dataclass
class QueryValidation:
    """A suite validated on the rows of a query: how many were in scope, validated and whether sampled."""

    rows_in_scope: int
    rows_validated: int
    sampled: bool
    outcome: ValidationOutcome | None  # None when no row was in scope

    @property
    def scope(self) -> str:
        """What was validated, in words: every row, or which sample of how many."""
        if not self.sampled:
            return f"every row ({self.rows_validated:,})"
        return (
            f"a sample of {self.rows_validated:,} of {self.rows_in_scope:,} rows "
            f"({SAMPLE_METHOD}; the cap is SEGMENTS_GX_SAMPLE_ROWS)"
        )


SAMPLE_METHOD = "DuckDB reservoir sample, seed 42: the same rows for the same data"


def validate_query(con, sql: str, params: list, suite, sample_rows: int) -> QueryValidation:
    """Validate the rows `sql` returns. Above `sample_rows` (> 0) rows, a seeded reservoir sample of
    that size drawn by DuckDB is validated instead of loading every row into pandas."""
    in_scope = con.execute(f"select count(*) from ({sql})", params).fetchall()[0][0]
    if not in_scope:
        return QueryValidation(0, 0, False, None)
    sampled = 0 < sample_rows < in_scope
    if sampled:
        sql = f"select * from ({sql}) using sample reservoir({int(sample_rows)} rows) repeatable (42)"
    df = con.execute(sql, params).df()
    return QueryValidation(in_scope, len(df), sampled, validate(df, suite))
