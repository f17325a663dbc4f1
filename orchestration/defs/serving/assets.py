"""Serving: after a successful run, publish the PII-free BI tables as a read-only copy BI tools open
instead of the warehouse (warehouse/serving.py does the copy and the atomic swap)."""

from collections.abc import Sequence

import dagster as dg

from orchestration.keys import BI_COPY_KEY, CUSTOMERS_KEY, FEATURES_KEY, WAREHOUSE_POOL, stage
from orchestration.resources import ServingResource, WarehouseResource
from orchestration.settings import get_settings
from report import build_report
from warehouse.run_records import record_published
from warehouse.serving import DEFAULT_KEEP, publish

# reporting.customers and reporting.customer_features are projections of these marts
MART_KEYS = (CUSTOMERS_KEY, FEATURES_KEY)


class BiCopyConfig(dg.Config):
    """How many published versions stay on disk (the newest; `current` is never deleted)."""

    keep_versions: int = DEFAULT_KEEP


def segment_keys(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    """Every asset of the `segments` and `activation` schemas: the publication waits for all of them and
    their checks."""
    return sorted(
        {key for a in assets for key in a.keys if key.path[0] in ("segments", "activation")}, key=lambda k: k.path
    )


def build_bi_copy(upstream_segments: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """The publishing asset, downstream of every segments model (known once the dbt manifest is read).

    Depending on them makes it run last in the build job, and only when they materialized and their
    blocking checks (dbt tests, GX suites) passed: a failed check skips the publication, so BI keeps
    reading the previous version.
    """

    @dg.asset(
        key=BI_COPY_KEY,
        deps=[*upstream_segments, *MART_KEYS],
        group_name="serving",
        # opens the warehouse read-only: DuckDB refuses that while another process holds the write lock
        pool=WAREHOUSE_POOL,
        op_tags=stage("publish"),
        kinds={"duckdb", "parquet"},
        description="Read-only, PII-free copy of the segments schema and reporting views of the customer marts "
        "(DuckDB file + Parquet) in $SEGMENTS_HOME/serving, swapped atomically: what BI tools open. The segment "
        "report of the version (report.html in its folder) is built from that copy.",
    )
    def bi_copy(
        context: dg.AssetExecutionContext, config: BiCopyConfig, warehouse: WarehouseResource, serving: ServingResource
    ) -> dg.MaterializeResult:
        result = publish(warehouse.path, serving.path, context.run_id, keep=config.keep_versions)
        with warehouse.connect() as con:  # what this run (and any unpublished run before it) loaded is now in BI
            record_published(con, context.run_id)
        report = build_report(result.version_dir)  # from the published copy, as any reader of it would
        return dg.MaterializeResult(
            metadata={
                "segment_report": dg.MetadataValue.url(get_settings().segment_report_url(result.version)),
                "segment_report_file": dg.MetadataValue.path(str(report)),
                "version": result.version,
                "version_dir": dg.MetadataValue.path(str(result.version_dir)),
                "duckdb_path": dg.MetadataValue.path(str(result.duckdb_path)),
                "tables": dg.MetadataValue.json(result.row_counts),
                "table_count": len(result.tables),
                "pruned_versions": dg.MetadataValue.json(list(result.pruned)),
                "publish_seconds": round(result.seconds, 2),
            }
        )

    return bi_copy
