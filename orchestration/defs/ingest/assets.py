"""Ingest: landing files -> raw schemas (crm, erp, support, events) + audit ledger and quarantine."""


from pathlib import Path

import dagster as dg

from orchestration.resources import WarehouseResource
from orchestration.settings import WAREHOUSE_POOL, get_settings
from warehouse.contracts import CONTRACTS
from warehouse.ingest import LEDGER_TABLE, QUARANTINE_TABLE, describe_failures, ingest_landing

LEDGER_KEY = dg.AssetKey(["audit", "ingest_ledger"])
QUARANTINE_KEY = dg.AssetKey(["audit", "quarantine"])
RAW_KEYS = [dg.AssetKey([c.source, c.table]) for c in CONTRACTS]


class IngestConfig(dg.Config):
    """Where to read landing files from; empty means `SEGMENTS_LANDING` or `$SEGMENTS_HOME/landing`."""

    landing_dir: str = ""


@dg.multi_asset(
    name="landing_files",
    group_name="ingest",
    pool=WAREHOUSE_POOL,
    specs=[
        dg.AssetSpec(
            key,
            description=f"Raw rows of landing/{key.path[0]}/{key.path[1]}/ that passed the landing contract.",
            kinds={"duckdb"},
        )
        for key in RAW_KEYS
    ]
    + [
        dg.AssetSpec(LEDGER_KEY, description="One row per landing file and attempt: hash, rows read/loaded/quarantined.", kinds={"duckdb"}),
        dg.AssetSpec(QUARANTINE_KEY, description="One row per rejected landing row: reason, origin (file, row), raw content.", kinds={"duckdb"}),
    ],
)
def landing_files(context: dg.AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource):
    """Load every new landing file (by SHA-256) into its raw table; reject bad rows into quarantine.

    Files that cannot be loaded at all (e.g. a missing required column) are recorded in the ledger and
    fail the step after every other file has been loaded, so nothing good is held back and nothing is lost.
    """
    landing = Path(config.landing_dir).resolve() if config.landing_dir else get_settings().landing_dir
    context.log.info(f"Ingesting landing folder {landing}")
    with warehouse.connect() as con:
        report = ingest_landing(con, landing, run_id=context.run_id)
        totals = {
            key: con.execute(f"select count(*) from {'.'.join(key.path)}").fetchone()[0]
            for key in [*RAW_KEYS, LEDGER_KEY, QUARANTINE_KEY]
        }
    for contract, key in zip(CONTRACTS, RAW_KEYS, strict=True):
        run_totals = report.totals(contract.qualified_name)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/row_count": totals[key],
                **{k: dg.MetadataValue.int(v) for k, v in run_totals.items()},
                "landing_folder": dg.MetadataValue.path(str(landing / contract.landing_path)),
                # schema drift: columns the contract does not know, tolerated and reported per file
                "extra_columns": dg.MetadataValue.json(
                    {f.source_file: f.extra_columns for f in report.for_table(contract.qualified_name) if f.extra_columns}
                ),
            },
        )
    yield dg.MaterializeResult(
        asset_key=LEDGER_KEY,
        metadata={"dagster/row_count": totals[LEDGER_KEY], "table": LEDGER_TABLE, "files_this_run": len(report.files)},
    )
    yield dg.MaterializeResult(
        asset_key=QUARANTINE_KEY,
        metadata={
            "dagster/row_count": totals[QUARANTINE_KEY],
            "table": QUARANTINE_TABLE,
            "quarantined_this_run": sum(f.rows_quarantined for f in report.files),
        },
    )
    if report.failures:
        raise dg.Failure(
            description=f"{len(report.failures)} landing file(s) could not be loaded:\n{describe_failures(report)}",
            metadata={"failed_files": [f.source_file for f in report.failures]},
        )
