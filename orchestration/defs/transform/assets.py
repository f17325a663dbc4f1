"""dbt models as Dagster assets; dbt tests become asset checks (error severity blocks downstream).

Python sits twice in the middle of the SQL graph, so dbt runs in three steps per full run:
`identity_input_models` (seeds, the staging models identity reads, its candidate records), then the
Python identity asset, `warehouse_models` (everything else up to marts) on top of its write-back, the
ML assets, and `segment_models` (segments.*) on top of theirs. Each write-back is a dbt source.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.dbt import dbt_target_path, use_warehouse
from orchestration.keys import WAREHOUSE_POOL, stage
from orchestration.project import prediction_in_use
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings

SEGMENTS_SELECTION = (
    "fqn:segments_warehouse.marts.segments fqn:segments_warehouse.marts.activation fqn:segments_warehouse.staging.ml"
)
# The candidate records identity resolution reads, and everything they are built from.
IDENTITY_INPUT_SELECTION = "+int_identity_candidates"
# dbt schema -> Dagster asset group
GROUPS = {
    "staging": "staging",
    "intermediate": "identity",
    "reference": "identity",
    "marts": "marts",
    "segments": "segments",
    "activation": "activation",
}


class WarehouseDbtTranslator(DagsterDbtTranslator):
    """Asset key = [schema, table] for models (sources keep dagster-dbt's [source, table])."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return GROUPS.get(dbt_resource_props.get("schema", ""), "dbt")


TRANSLATOR = WarehouseDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


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
        yield from dbt.cli(["build"], context=context, target_path=target).stream()

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
