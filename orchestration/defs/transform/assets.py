"""dbt models as Dagster assets; dbt tests become asset checks (error severity blocks downstream).

Python sits twice in the middle of the SQL graph, so dbt runs in three steps per full run:
`identity_input_models` (seeds, the staging models identity reads, its candidate records), then the
Python identity asset, `warehouse_models` (everything else up to marts) on top of its write-back, the
ML assets, and `segment_models` (segments.*) on top of theirs. Each write-back is a dbt source.
"""

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.dbt import dbt_target_path, use_warehouse
from orchestration.keys import WAREHOUSE_POOL, stage
from orchestration.project import prediction_in_use
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings
from warehouse.summary import table_shapes

SEGMENTS_SELECTION = (
    "fqn:segments_warehouse.marts.segments fqn:segments_warehouse.marts.activation fqn:segments_warehouse.staging.ml"
)
# The candidate records identity resolution reads, and everything they are built from.
IDENTITY_INPUT_SELECTION = "+int_identity_candidates"
# Dagster asset group of the dbt models of a folder (models/<layer>/<topic>/): the layers of the warehouse.
# The identity intermediates prepare and apply identity resolution; the finance one (amounts in the base
# currency) is part of building the marts. Seeds (reference data: nicknames, calling codes) are `reference`.
FOLDER_GROUPS = {
    ("staging",): "staging",
    ("intermediate", "identity"): "identity",
    ("intermediate", "finance"): "marts",
    ("marts", "core"): "marts",
    ("marts", "segments"): "segments",
    ("marts", "activation"): "activation",
}


class WarehouseDbtTranslator(DagsterDbtTranslator):
    """Asset key = [schema, table] for models (sources keep dagster-dbt's [source, table])."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        folders = tuple(dbt_resource_props.get("fqn", [])[1:-1])  # [project, *folders, name]
        for depth in range(len(folders), 0, -1):
            if folders[:depth] in FOLDER_GROUPS:
                return FOLDER_GROUPS[folders[:depth]]
        return "dbt"


TRANSLATOR = WarehouseDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def _unique_id(event: Any) -> str | None:
    """The dbt node an output of `dbt build` is (dagster-dbt puts its unique id in the metadata)."""
    entry = event.metadata.get("unique_id") if isinstance(event, dg.Output) else None
    return entry.value if isinstance(entry, dg.TextMetadataValue) else entry


def with_table_metadata(
    events: list, warehouse: WarehouseResource, nodes: Mapping[str, Mapping[str, Any]]
) -> Iterator[Any]:
    """`events` of a `dbt build`, each model's and seed's output with its row count and column schema (names,
    types from the warehouse, descriptions from the dbt docs) added, as dagster-dbt's `fetch_row_counts()` and
    `fetch_column_metadata()` would. Those query through a dbt adapter while dbt still runs, and DuckDB lets no
    second process open the file while dbt writes it: so this reads them once dbt has ended, in one
    connection, and the step's materializations are reported when it ends."""
    relations = {
        uid: (node["schema"], node.get("alias") or node["name"])
        for uid, node in nodes.items()
        if node.get("resource_type") in ("model", "seed", "snapshot")
    }
    built = {uid for uid in map(_unique_id, events) if uid}
    shapes = {}
    if built & relations.keys():
        with warehouse.connect(read_only=True) as con:
            shapes = table_shapes(con, [relations[uid] for uid in built if uid in relations])
    for event in events:
        uid = _unique_id(event)
        shape = shapes.get(relations.get(uid)) if uid else None
        if shape is None:
            yield event
            continue
        rows, columns = shape
        docs = nodes[uid].get("columns") or {}
        schema = dg.TableSchema(
            columns=[
                dg.TableColumn(name=col, type=type_, description=(docs.get(col) or {}).get("description") or None)
                for col, type_ in columns
            ]
        )
        yield event.with_metadata({**event.metadata, "dagster/row_count": rows, "dagster/column_schema": schema})


def _dbt_step(
    manifest: Path, name: str, doc: str, select: str = "fqn:*", exclude: str | None = None, stage_name: str = "dbt"
) -> dg.AssetsDefinition:
    """One `dbt build` step over a selection of the project (all steps share the warehouse pool)."""

    def step(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
        settings = get_settings()
        home = settings.home
        prediction = prediction_in_use(settings.project).dbt_settings()
        use_warehouse(warehouse.path, home, settings.project.base_currency, prediction)
        target = dbt_target_path(home, name, context.run_id)
        events, failure = [], None
        try:
            events.extend(dbt.cli(["build"], context=context, target_path=target).stream())
        except Exception as err:  # noqa: BLE001 - re-raised below, once what did build is reported
            failure = err
        yield from with_table_metadata(events, warehouse, nodes)
        if failure is not None:
            raise failure

    nodes = json.loads(manifest.read_text())["nodes"]
    step.__doc__ = doc
    step.__name__ = name
    return dbt_assets(
        manifest=manifest,
        dagster_dbt_translator=TRANSLATOR,
        select=select,
        exclude=exclude,
        name=name,
        pool=WAREHOUSE_POOL,
        op_tags=stage(stage_name),
    )(step)


def build_dbt_assets(manifest: Path) -> list[dg.AssetsDefinition]:
    """The three dbt steps, built from a manifest that exists (see `orchestration.dbt.ensure_manifest`)."""
    return [
        _dbt_step(
            manifest,
            "identity_input_models",
            "Reference seeds, person staging models and the normalised candidate records, with tests.",
            select=IDENTITY_INPUT_SELECTION,
        ),
        _dbt_step(
            manifest,
            "warehouse_models",
            "The remaining staging models, resolved records, golden record and marts, with tests.",
            exclude=f"{SEGMENTS_SELECTION} {IDENTITY_INPUT_SELECTION}",
        ),
        _dbt_step(
            manifest,
            "segment_models",
            "BI-facing segment tables built on the ML write-back, with tests.",
            select=SEGMENTS_SELECTION,
            stage_name="scoring",  # the segment tables are the scoring run's output for BI
        ),
    ]
