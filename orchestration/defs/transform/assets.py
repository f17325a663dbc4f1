"""dbt models as Dagster assets; dbt tests become asset checks (error severity blocks downstream).

Python sits twice in the middle of the SQL graph, so dbt runs in three steps per full run:
`identity_input_models` (seeds, the staging models identity reads, its candidate records), then the
Python identity asset, `warehouse_models` (everything else up to marts) on top of its write-back, the
ML assets, and `segment_models` (segments.*) on top of theirs. Each write-back is a dbt source.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.resources import WarehouseResource
from orchestration.settings import DBT_PROJECT_DIR, WAREHOUSE_POOL, get_settings
from warehouse.connections import DEFAULT_MEMORY_LIMIT

SEGMENTS_SELECTION = "fqn:segments_warehouse.marts.segments"
# The candidate records identity resolution reads, and everything they are built from.
IDENTITY_INPUT_SELECTION = "+int_identity_candidates"
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"


class WarehouseDbtTranslator(DagsterDbtTranslator):
    """Asset key = [schema, table] for models (sources keep dagster-dbt's [source, table])."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return {
            "staging": "staging",
            "intermediate": "identity",
            "reference": "identity",
            "marts": "marts",
            "segments": "segments",
        }.get(dbt_resource_props.get("schema", ""), "dbt")


TRANSLATOR = WarehouseDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


# What dbt parses: a change under these folders (or to the two project files) needs a new manifest.
SOURCE_FOLDERS = ("models", "macros", "seeds", "tests", "snapshots", "analyses")
# Per-invocation dbt target folders (compiled SQL, run_results.json, dbt.log) kept for debugging.
KEEP_TARGET_FOLDERS = 9


def _project_files_mtime() -> float:
    """Newest modification time of the files dbt parses. Walks only the source folders: `target/`
    can hold tens of thousands of files, and walking it cost seconds at every start-up."""
    files = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in SOURCE_FOLDERS:
        files += [p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.suffix in (".sql", ".yml", ".yaml", ".csv")]
    return max((p.stat().st_mtime for p in files if p.exists()), default=0.0)


def dbt_target_path(home: Path, step: str, run_id: str) -> Path:
    """Where one dbt step of a run writes its target folder: under `$SEGMENTS_HOME/dbt/`, not in the
    project, and only the latest KEEP_TARGET_FOLDERS are kept (each holds a manifest copy and every
    compiled model; without pruning they grew by ~4 MB per step, for ever)."""
    root = home / "dbt" / "target"
    root.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for stale in old[: max(0, len(old) - (KEEP_TARGET_FOLDERS - 1))]:
        shutil.rmtree(stale, ignore_errors=True)
    return root / f"{step}-{run_id[:8]}"


def _profile_stamp(warehouse_path: Path) -> str:
    """What dbt's profile renders from the environment: when it differs from the last parse, dbt
    refuses partial parsing ("profile has changed") and re-parses in every one of the run's steps."""
    limit = os.environ.get("SEGMENTS_DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    return f"{warehouse_path}\n{limit}\n"


def ensure_manifest(warehouse_path: Path) -> Path:
    """Run `dbt parse` (~3 s) when the manifest is missing, older than any project file, or parsed
    for another warehouse, so that the run's dbt steps all reuse its partial-parse state."""
    stamp = MANIFEST_PATH.with_name("profile_stamp.txt")
    if (
        MANIFEST_PATH.exists()
        and MANIFEST_PATH.stat().st_mtime >= _project_files_mtime()
        and stamp.exists()
        and stamp.read_text() == _profile_stamp(warehouse_path)
    ):
        return MANIFEST_PATH
    env = {**os.environ, "SEGMENTS_WAREHOUSE_PATH": str(warehouse_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [str(dbt), "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not MANIFEST_PATH.exists():
        raise RuntimeError(f"dbt parse failed:\n{proc.stdout}\n{proc.stderr}")
    stamp.write_text(_profile_stamp(warehouse_path))
    return MANIFEST_PATH


def manifest_sha256() -> str:
    return hashlib.sha256(MANIFEST_PATH.read_bytes()).hexdigest() if MANIFEST_PATH.exists() else ""


def _run_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource, step_name: str):
    # dbt's profile reads the warehouse path from the environment of its subprocess. Tests run only
    # when all their parents are selected (a relationships test from segments.* to marts.customers
    # belongs to the later segment_models step, not to warehouse_models).
    os.environ["SEGMENTS_WAREHOUSE_PATH"] = warehouse.path
    os.environ["DBT_INDIRECT_SELECTION"] = "cautious"
    target = dbt_target_path(get_settings().home, step_name, context.run_id)
    yield from dbt.cli(["build"], context=context, target_path=target).stream()


def _dbt_step(
    manifest: Path, name: str, doc: str, select: str = "fqn:*", exclude: str | None = None
) -> dg.AssetsDefinition:
    """One `dbt build` step over a selection of the project (all steps share the warehouse pool)."""

    def step(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
        yield from _run_dbt(context, dbt, warehouse, name)

    step.__doc__ = doc
    step.__name__ = name
    return dbt_assets(
        manifest=manifest,
        dagster_dbt_translator=TRANSLATOR,
        select=select,
        exclude=exclude,
        name=name,
        pool=WAREHOUSE_POOL,
    )(step)


def build_dbt_assets(manifest: Path) -> list[dg.AssetsDefinition]:
    """The three dbt steps, built from a manifest that exists (see `ensure_manifest`)."""
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
            "BI-facing segment tables built on the ML write-back.",
            select=SEGMENTS_SELECTION,
        ),
    ]
