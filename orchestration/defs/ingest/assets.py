"""Ingest: landing files -> raw schemas (crm, erp, support, events) + audit ledger and quarantine."""

from pathlib import Path

import dagster as dg

from orchestration.keys import LAWFUL_BASES_KEY, LEDGER_KEY, QUARANTINE_KEY, RAW_KEYS, WAREHOUSE_POOL, stage
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings
from warehouse.base_currency import BaseCurrencyChanged, record_base_currency
from warehouse.contracts import CONTRACTS
from warehouse.ingest import (
    DEFAULT_SETTLE_SECONDS,
    LEDGER_TABLE,
    QUARANTINE_TABLE,
    describe_failures,
    ingest_landing,
    landing_without_deliveries,
)
from warehouse.lawful_bases import LAWFUL_BASES_TABLE, record_lawful_bases
from warehouse.mapped_deliveries import apply_mappings, load_mappings
from warehouse.run_records import record_ingest, record_start, unpublished_loads
from warehouse.summary import row_counts


class IngestConfig(dg.Config):
    """Where to read landing files from; empty means `SEGMENTS_LANDING` or `$SEGMENTS_HOME/landing`.

    `skip_when_unchanged`: when no landing file is new and everything earlier runs loaded has been
    published (the warehouse's run records say so, `warehouse/run_records.py`), materialize nothing, so
    every downstream step is skipped (`segments run --force` turns it off to rebuild anyway, e.g. after
    changing a model or a definition). `settle_seconds`: a file is read once unchanged that long.
    """

    landing_dir: str = ""
    skip_when_unchanged: bool = True
    settle_seconds: float = DEFAULT_SETTLE_SECONDS


@dg.multi_asset(
    name="landing_files",
    group_name="ingest",
    pool=WAREHOUSE_POOL,
    op_tags=stage("ingest"),
    specs=[
        dg.AssetSpec(
            key,
            description=f"Raw rows of landing/{key.path[0]}/{key.path[1]}/ that passed the landing contract.",
            kinds={"duckdb"},
            skippable=True,
        )
        for key in RAW_KEYS
    ]
    + [
        dg.AssetSpec(
            LEDGER_KEY,
            description="One row per landing file and attempt: hash, rows read/loaded/quarantined.",
            kinds={"duckdb"},
            skippable=True,
        ),
        dg.AssetSpec(
            LAWFUL_BASES_KEY,
            description="The lawful basis of each purpose per source system, from the user's project.",
            kinds={"duckdb"},
            skippable=True,
        ),
        dg.AssetSpec(
            QUARANTINE_KEY,
            description="One row per rejected landing row: reason, origin (file, row), raw content.",
            kinds={"duckdb"},
            skippable=True,
        ),
    ],
)
def landing_files(context: dg.AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource):
    """Load every new landing file (by SHA-256) into its raw table; reject bad rows into quarantine.

    Files that cannot be loaded at all (e.g. a missing required column) are recorded in the ledger and
    fail the step after every other file has been loaded, so nothing good is held back and nothing is lost.
    A run with no new file, when every earlier load is published, materializes nothing: the rest of the
    job is skipped. What counts is the warehouse's durable state (ledger and run records), not the
    orchestrator's event log: a run killed after its ingest is completed by the next plain run. Files
    still being written are left for a later run, with a warning.
    """
    settings = get_settings()
    project = settings.project
    landing = Path(config.landing_dir).resolve() if config.landing_dir else settings.landing_dir
    context.log.info(f"Ingesting landing folder {landing}; {project.describe()}")
    if not landing.is_dir():
        raise dg.Failure(description=landing_without_deliveries(landing, project.contracts))
    with warehouse.connect() as con:
        record_start(con, context.run_id)
        bases_changed = record_lawful_bases(con, project.basis_rows(), project.name, context.run_id)
        if bases_changed:
            context.log.info("The project's lawful bases changed: every customer's basis is recomputed")
        try:
            currency_changed = record_base_currency(con, project.base_currency, project.name, context.run_id)
        except BaseCurrencyChanged as err:
            raise dg.Failure(description=str(err)) from None
        if currency_changed:
            context.log.info(f"The base currency changed to {project.base_currency}: every amount is converted again")
        mappings = load_mappings(project.mappings_dir, project.time_zone)
        mapping_run = apply_mappings(mappings, landing, settings.mapped_dir, settle_seconds=config.settle_seconds)
        for path, message in mapping_run.waiting.items():
            context.log.warning(f"{path}: {message}")
        contracts = project.contracts
        report = ingest_landing(
            con, landing, run_id=context.run_id, contracts=contracts, settle_seconds=config.settle_seconds
        )
        if mappings:  # the mapped files: contract-shaped, loaded like any landing file
            mapped = ingest_landing(
                con, settings.mapped_dir, run_id=context.run_id, contracts=contracts, settle_seconds=0
            )
            report.files.extend(mapped.files)
        found_nothing = not report.files and not any(
            (mapping_run.mapped, mapping_run.unchanged, mapping_run.waiting, mapping_run.failures)
        )
        if found_nothing and not row_counts(con, [LEDGER_TABLE])[LEDGER_TABLE]:  # nothing now, nothing ever
            raise dg.Failure(description=landing_without_deliveries(landing, contracts))
        loaded = sum(f.status == "loaded" for f in report.files)
        record_ingest(con, context.run_id, loaded)
        for waiting in report.waiting:
            context.log.warning(f"{waiting.source_file}: {waiting.message}")
        unpublished = unpublished_loads(con, excluding=context.run_id)
        settings_changed = bases_changed or currency_changed
        nothing_changed = not loaded and not report.failures and not settings_changed and not mapping_run.failures
        if nothing_changed and config.skip_when_unchanged and not unpublished:
            context.log.info(
                f"No new landing file among {len(report.files)} and everything loaded before is published: "
                "nothing to do, downstream steps are skipped (segments run --force rebuilds anyway)."
            )
            return
        if unpublished:
            context.log.warning(f"{unpublished.describe()}: this run completes their work")
        totals = row_counts(con, [c.qualified_name for c in CONTRACTS] + [LEDGER_TABLE, QUARANTINE_TABLE])
    for contract, key in zip(CONTRACTS, RAW_KEYS, strict=True):
        run_totals = report.totals(contract.qualified_name)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/row_count": totals[contract.qualified_name],
                **{k: dg.MetadataValue.int(v) for k, v in run_totals.items()},
                "landing_folder": dg.MetadataValue.path(str(landing / contract.landing_path)),
                # schema drift: columns the contract does not know, tolerated and reported per file
                "extra_columns": dg.MetadataValue.json(
                    {
                        f.source_file: f.extra_columns
                        for f in report.for_table(contract.qualified_name)
                        if f.extra_columns
                    }
                ),
            },
        )
    yield dg.MaterializeResult(
        asset_key=LEDGER_KEY,
        metadata={
            "dagster/row_count": totals[LEDGER_TABLE],
            "table": LEDGER_TABLE,
            "files_this_run": len(report.files),
            "source_files_mapped_this_run": len(mapping_run.mapped),
            "files_waiting": len(report.waiting),
            "unpublished_earlier_files": unpublished.files,
        },
    )
    yield dg.MaterializeResult(
        asset_key=LAWFUL_BASES_KEY,
        metadata={
            "table": LAWFUL_BASES_TABLE,
            "project": project.name,
            "changed_this_run": bases_changed,
            "bases": dg.MetadataValue.json([list(r) for r in project.basis_rows()]),
        },
    )
    yield dg.MaterializeResult(
        asset_key=QUARANTINE_KEY,
        metadata={
            "dagster/row_count": totals[QUARANTINE_TABLE],
            "table": QUARANTINE_TABLE,
            "quarantined_this_run": sum(f.rows_quarantined for f in report.files),
        },
    )
    problems = []
    if mapping_run.failures:
        problems.append(
            f"{len(mapping_run.failures)} file(s) could not be mapped (nothing of them was loaded):\n"
            + mapping_run.describe()
        )
    if report.failures:
        problems.append(f"{len(report.failures)} landing file(s) could not be loaded:\n{describe_failures(report)}")
    if problems:
        raise dg.Failure(
            description="\n".join(problems) + "\nEvery other file was loaded.",
            metadata={"failed_files": list(mapping_run.failures) + [f.source_file for f in report.failures]},
        )
