"""Reconciliation checks on the ingest ledger: nothing lost, nothing twice."""

import dagster as dg

from orchestration.keys import LEDGER_KEY, WAREHOUSE_POOL, stage
from orchestration.resources import WarehouseResource
from warehouse.reconcile import ledger_discrepancies


@dg.asset_check(
    asset=LEDGER_KEY,
    blocking=True,
    pool=WAREHOUSE_POOL,
    op_tags=stage("ingest"),
    description=(
        "For every loaded file: rows read = rows loaded + rows quarantined + rows already loaded + rows "
        "updated + rows deleted, and the raw table (with the versions later replaced or deleted, "
        "audit.record_versions) and the quarantine hold exactly those rows."
    ),
)
def every_file_reconciles(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        problems = ledger_discrepancies(con)
        files = con.execute("select count(*) from audit.ingest_ledger where status = 'loaded'").fetchone()[0]
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"files_checked": files, "discrepancies": dg.MetadataValue.json(problems[:50])},
    )
