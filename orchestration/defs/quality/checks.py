"""Great Expectations suites as Dagster asset checks (GX 1.x, validated on DataFrames read from DuckDB).

Error-severity failures fail the check and, the checks being blocking, stop everything downstream;
warn-only failures show as a warning. Above `SEGMENTS_GX_SAMPLE_ROWS` rows (default 100,000) a suite
validates a seeded random sample of that size, drawn by DuckDB, instead of loading every row into
pandas (43M order lines would need ~10 GB and minutes): every row is still held to the landing
contract at ingest (SQL, rejected rows quarantined) and every key to dbt's unique / not_null tests;
GX adds the second, semantic look. The metadata says how many rows were in scope and validated. Every check
writes its suite's page into the run's self-contained HTML report (`$SEGMENTS_HOME/reports/<run_id>/index.html`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import great_expectations as gx

from expectations.report import ReportContext, write_suite_report
from expectations.suites.customers import build_customers_suite
from expectations.suites.marts import MART_SUITES
from expectations.suites.raw import build_raw_suite
from expectations.validate import validate_query
from orchestration.keys import CUSTOMERS_KEY, WAREHOUSE_POOL, stage
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings
from warehouse.contracts import CONTRACTS, TableContract
from warehouse.run_records import unpublished_files_sql


def _validate_query(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    check: dg.AssetCheckKey,
    sql: str,
    params: list,
    suite: gx.ExpectationSuite,
) -> dg.AssetCheckResult:
    settings = get_settings()
    with warehouse.connect(read_only=True) as con:
        result = validate_query(con, sql, params, suite, settings.gx_sample_rows)
    outcome = result.outcome
    target = {"asset_key": check.asset_key, "check_name": check.name}
    if outcome is None:
        return dg.AssetCheckResult(
            **target, passed=True, metadata={"rows_validated": 0, "note": "no rows to validate in this run"}
        )
    report = write_suite_report(
        settings.home / "reports" / context.run.run_id,
        outcome,
        result.rows_validated,
        ReportContext(
            run_id=context.run.run_id,
            validated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", ""),
            scope=result.scope,
            run_url=settings.dagster_run_url(context.run.run_id),
        ),
    )
    return dg.AssetCheckResult(
        **target,
        passed=not outcome.blocking and outcome.failed_warn == 0,
        severity=dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_in_scope": result.rows_in_scope,
            "rows_validated": result.rows_validated,
            "sampled": result.sampled,
            "validated": result.scope,
            "expectations_passed": outcome.passed,
            "failed_error": outcome.failed_error,
            "failed_warn": outcome.failed_warn,
            "results": dg.MetadataValue.json(outcome.results_as_dicts()),
            "report": dg.MetadataValue.url(settings.validation_report_url(context.run.run_id)),
            "report_file": dg.MetadataValue.path(str(report)),
        },
    )


@dataclass(frozen=True)
class _Suite:
    """One GX suite as one asset check: the rows it validates (SQL and parameters) and the suite."""

    key: dg.AssetKey
    check: str
    description: str
    sql: str
    params: tuple[str, ...]
    build: Callable[[], gx.ExpectationSuite]


def _suites_check(name: str, description: str, suites: list[_Suite]) -> dg.AssetChecksDefinition:
    """One step that validates several suites, each its own blocking asset check (own result and
    severity, selectable alone in the UI). Grouped by the step that builds their tables: Dagster's fixed
    cost of a step (~1.1 s of the ~1.5 s a suite took as a step of its own) is paid once per group."""
    by_check = {dg.AssetCheckKey(s.key, s.check): s for s in suites}

    @dg.multi_asset_check(
        name=name,
        description=description,
        specs=[dg.AssetCheckSpec(s.check, asset=s.key, blocking=True, description=s.description) for s in suites],
        can_subset=True,
        pool=WAREHOUSE_POOL,
        op_tags=stage("quality"),
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        selected = context.selected_asset_check_keys
        for check, suite in by_check.items():
            if check in selected:
                yield _validate_query(context, warehouse, check, suite.sql, list(suite.params), suite.build())

    return _check


def _raw_suite(contract: TableContract) -> _Suite:
    return _Suite(
        key=dg.AssetKey([contract.source, contract.table]),
        check="new_rows_pass_expectation_suite",
        description=(
            f"Rows loaded into {contract.qualified_name} by this run (and by an earlier run that died before "
            "it published) pass the GX suite derived from the landing contract."
        ),
        sql=f"select * from {contract.qualified_name} where _file_sha256 in ({unpublished_files_sql()})",
        params=(contract.qualified_name,),
        build=lambda: build_raw_suite(contract),
    )


def _table_suite(key: tuple[str, str], build: Callable[[], gx.ExpectationSuite]) -> _Suite:
    return _Suite(
        key=dg.AssetKey(list(key)),
        check="passes_expectation_suite",
        description=f"{'.'.join(key)} passes its GX suite (error severity blocks downstream, warn is reported).",
        sql=f"select * from {'.'.join(key)}",
        params=(),
        build=build,
    )


CUSTOMERS_SUITE = _Suite(
    key=CUSTOMERS_KEY,
    check="customers_pass_expectation_suite",
    description="marts.customers passes its GX suite; error-severity failures block training and scoring.",
    sql="select * from marts.customers",
    params=(),
    build=build_customers_suite,
)

RAW_SUITE_CHECKS = [
    _suites_check(
        "raw_tables_pass_expectation_suites",
        "The rows each landing table gained in this run pass the GX suite of its landing contract.",
        [_raw_suite(c) for c in CONTRACTS],
    )
]
MART_SUITE_CHECKS = [
    _suites_check(
        "marts_pass_expectation_suites",
        "The marts pass their GX suites; error-severity failures block training and scoring.",
        [CUSTOMERS_SUITE] + [_table_suite(k, b) for k, b in MART_SUITES.items() if k[0] == "marts"],
    ),
    _suites_check(
        "segment_tables_pass_expectation_suites",
        "The BI-facing segment tables pass their GX suites before they are published.",
        [_table_suite(k, b) for k, b in MART_SUITES.items() if k[0] != "marts"],
    ),
]
