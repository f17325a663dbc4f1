"""Great Expectations suites as Dagster asset checks (GX 1.x, validated on DataFrames read from DuckDB)."""


import dagster as dg

from expectations.suites.customers import build_customers_suite
from expectations.validate import validate
from orchestration.settings import WAREHOUSE_POOL
from orchestration.resources import WarehouseResource


@dg.asset_check(
    asset=dg.AssetKey(["marts", "customers"]),
    blocking=True,
    pool=WAREHOUSE_POOL,
    description="marts.customers passes its GX suite; error-severity failures block training and scoring.",
)
def customers_pass_expectation_suite(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        df = con.execute("select * from marts.customers").df()
    outcome = validate(df, build_customers_suite())
    # Only error-severity failures fail (and block); warn-only failures show as a warning.
    return dg.AssetCheckResult(
        passed=not outcome.blocking and outcome.failed_warn == 0,
        severity=dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_validated": len(df),
            "expectations_passed": outcome.passed,
            "failed_error": outcome.failed_error,
            "failed_warn": outcome.failed_warn,
            "results": dg.MetadataValue.json(outcome.results_as_dicts()),
        },
    )
