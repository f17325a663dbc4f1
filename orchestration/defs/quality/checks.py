"""Great Expectations suites as Dagster asset checks (GX 1.x, validated on DataFrames read from DuckDB).

Error-severity failures fail the check and, the checks being blocking, stop everything downstream;
warn-only failures show as a warning. Above `SEGMENTS_GX_SAMPLE_ROWS` rows (default 100,000) a suite
validates a seeded random sample of that size, drawn by DuckDB, instead of loading every row into
pandas (43M order lines would need ~10 GB and minutes): every row is still held to the landing
contract at ingest (SQL, rejected rows quarantined) and every key to dbt's unique / not_null tests;
GX adds the second, semantic look. The metadata says how many rows were in scope and validated. Every check
writes its suite's page into the run's self-contained HTML report (`$SEGMENTS_HOME/reports/<run_id>/index.html`).
"""

import dagster as dg
import great_expectations as gx

from expectations.report import write_suite_report
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
    sql: str,
    params: list,
    suite: gx.ExpectationSuite,
) -> dg.AssetCheckResult:
    settings = get_settings()
    with warehouse.connect(read_only=True) as con:
        result = validate_query(con, sql, params, suite, settings.gx_sample_rows)
    outcome = result.outcome
    if outcome is None:
        return dg.AssetCheckResult(
            passed=True, metadata={"rows_validated": 0, "note": "no rows to validate in this run"}
        )
    report = write_suite_report(settings.home / "reports" / context.run.run_id, outcome, result.rows_validated)
    return dg.AssetCheckResult(
        passed=not outcome.blocking and outcome.failed_warn == 0,
        severity=dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_in_scope": result.rows_in_scope,
            "rows_validated": result.rows_validated,
            "sampled": result.sampled,
            "expectations_passed": outcome.passed,
            "failed_error": outcome.failed_error,
            "failed_warn": outcome.failed_warn,
            "results": dg.MetadataValue.json(outcome.results_as_dicts()),
            "report": dg.MetadataValue.path(str(report)),
        },
    )


@dg.asset_check(
    asset=CUSTOMERS_KEY,
    blocking=True,
    pool=WAREHOUSE_POOL,
    op_tags=stage("quality"),
    description="marts.customers passes its GX suite; error-severity failures block training and scoring.",
)
def customers_pass_expectation_suite(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    return _validate_query(context, warehouse, "select * from marts.customers", [], build_customers_suite())


def _raw_suite_check(contract: TableContract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([contract.source, contract.table]),
        name="new_rows_pass_expectation_suite",
        blocking=True,
        pool=WAREHOUSE_POOL,
        op_tags=stage("quality"),
        description=(
            f"Rows loaded into {contract.qualified_name} by this run (and by an earlier run that died before "
            "it published) pass the GX suite derived from the landing contract."
        ),
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        sql = f"select * from {contract.qualified_name} where _file_sha256 in ({unpublished_files_sql()})"
        return _validate_query(context, warehouse, sql, [contract.qualified_name], build_raw_suite(contract))

    return _check


RAW_SUITE_CHECKS = [_raw_suite_check(c) for c in CONTRACTS]


def _mart_suite_check(key: tuple[str, str], build) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(list(key)),
        name="passes_expectation_suite",
        blocking=True,
        pool=WAREHOUSE_POOL,
        op_tags=stage("quality"),
        description=f"{'.'.join(key)} passes its GX suite (error severity blocks downstream, warn is reported).",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return _validate_query(context, warehouse, f"select * from {'.'.join(key)}", [], build())

    return _check


MART_SUITE_CHECKS = [_mart_suite_check(key, build) for key, build in MART_SUITES.items()]
