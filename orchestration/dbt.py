"""dbt, invoked one way: the project, the environment its profile reads and the subprocess call.

Every dbt invocation of the project goes through here: `dbt parse` when the manifest is stale
(`ensure_manifest`), `dbt docs generate` (`segments docs`), compiles in the tests, and the
`DbtCliResource` the dbt assets stream `dbt build` through.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource
from packaging.version import Version

from orchestration.settings import PROJECT_ROOT
from warehouse.connections import DEFAULT_MEMORY_LIMIT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# What dbt parses: a change under these folders (or to the two project files) needs a new manifest.
SOURCE_FOLDERS = ("models", "macros", "seeds", "tests", "snapshots", "analyses")
# Per-invocation dbt target folders (compiled SQL, run_results.json, dbt.log) kept for debugging.
KEEP_TARGET_FOLDERS = 9


def dbt_executable() -> Path:
    """The venv's dbt, whether or not the venv is on PATH."""
    return Path(sys.executable).with_name("dbt")


def dbt_environment(warehouse_path: Path | str) -> dict[str, str]:
    """The variables dbt's profile reads (the warehouse file), on top of this process's environment."""
    return {**os.environ, "SEGMENTS_WAREHOUSE_PATH": str(warehouse_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def run_dbt(
    args: Sequence[str], warehouse_path: Path | str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`dbt <args>` on the project against the warehouse at `warehouse_path` (and `extra_env`), output captured."""
    return subprocess.run(
        [str(dbt_executable()), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env={**dbt_environment(warehouse_path), **(extra_env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


class WarehouseDbtResource(DbtCliResource):
    """`DbtCliResource` without the two things it does in this process before each `dbt build`, which
    cost ~3 s a run and ~0.7 s a step and that nothing here uses:

    - the version: it asks `dbt --version` in a subprocess (a whole dbt start-up) once per resource, so
      once per run; the executable is the venv's own (`dbt_executable`), whose version is that of the
      installed dbt-core package;
    - the adapter: it opens a dbt-core adapter in-process (profile, project, macros) only so that
      `fetch_row_counts()`/`fetch_column_metadata()` can query the warehouse; the steps call neither.

    Both are private members of dagster-dbt (locked in uv.lock); `tests/orchestration/test_dbt.py` fails when
    an upgrade renames them, instead of the overrides silently no longer applying.
    """

    @cached_property
    def _cli_version(self) -> Version:
        return Version(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, *args, **kwargs) -> None:
        return None


def dbt_resource() -> DbtCliResource:
    """The resource the dbt assets stream `dbt build` through."""
    return WarehouseDbtResource(
        project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=str(dbt_executable())
    )


def use_warehouse(warehouse_path: Path | str, home: Path, base_currency: str, prediction: str) -> None:
    """Point the dbt subprocesses `DbtCliResource` starts at the warehouse, the home's parse state, the
    project's base currency and prediction settings (`PredictionDefinition.dbt_settings()`: horizon and
    training snapshots): it passes this process's environment on, dbt's profile reads the path from
    it, the `base_currency()` and `prediction_setting()` macros the rest, and dagster-dbt copies the
    partial-parse file from `DBT_TARGET_PATH`. Tests run only when all their parents are selected (a
    relationships test from segments.* to marts.customers belongs to the segments step, not to the marts
    step)."""
    os.environ["SEGMENTS_WAREHOUSE_PATH"] = str(warehouse_path)
    os.environ["SEGMENTS_BASE_CURRENCY"] = base_currency
    os.environ["SEGMENTS_PREDICTION"] = prediction
    os.environ["DBT_TARGET_PATH"] = str(parse_target(home))
    os.environ["DBT_INDIRECT_SELECTION"] = "cautious"


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


def parse_target(home: Path) -> Path:
    """Where `dbt parse` leaves the manifest and partial-parse state of one `SEGMENTS_HOME`: in the
    home, so two homes on one checkout (a demo and a bench, parallel test workers) neither overwrite
    each other's parse nor force a re-parse on every switch."""
    return home / "dbt" / "parse"


def manifest_path(home: Path) -> Path:
    return parse_target(home) / "manifest.json"


def _profile_stamp(warehouse_path: Path) -> str:
    """What dbt's profile renders from the environment: when it differs from the last parse, dbt
    refuses partial parsing ("profile has changed") and re-parses in every one of the run's steps."""
    limit = os.environ.get("SEGMENTS_DUCKDB_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    return f"{warehouse_path}\n{limit}\n"


def ensure_manifest(home: Path, warehouse_path: Path) -> Path:
    """Run `dbt parse` (~3 s) when the home's manifest is missing, older than any project file, or
    parsed for another warehouse, so that the run's dbt steps all reuse its partial-parse state."""
    manifest = manifest_path(home)
    stamp = manifest.with_name("profile_stamp.txt")
    if (
        manifest.exists()
        and manifest.stat().st_mtime >= _project_files_mtime()
        and stamp.exists()
        and stamp.read_text() == _profile_stamp(warehouse_path)
    ):
        return manifest
    proc = run_dbt(["parse", "--quiet", "--target-path", str(parse_target(home))], warehouse_path)
    if proc.returncode != 0 or not manifest.exists():
        raise RuntimeError(f"dbt parse failed:\n{proc.stdout}\n{proc.stderr}")
    stamp.write_text(_profile_stamp(warehouse_path))
    return manifest


def manifest_sha256(home: Path) -> str:
    """Digest of the parsed manifest: a lineage tag of every model trained on the marts it describes."""
    manifest = manifest_path(home)
    return hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.exists() else ""


def upstream_models(manifest: Path, relations: list[str]) -> list[tuple[str, str, str, str]]:
    """(relation, resource type, file path in the dbt project, SQL checksum) of the models named by `relations`
    (`schema.name`) and every model, seed and snapshot they are built from: those first, then the rest by name,
    what a reviewer checks a published table against. The checksum is dbt's (SHA-256 of the file), so an edited
    model shows."""
    nodes = json.loads(manifest.read_text())["nodes"]
    built = {uid: n for uid, n in nodes.items() if n.get("resource_type") in ("model", "seed", "snapshot")}
    relation = {uid: f"{n['schema']}.{n.get('alias') or n['name']}" for uid, n in built.items()}
    start = [uid for name in relations for uid, rel in relation.items() if rel == name]
    seen, frontier = list(start), list(start)
    while frontier:
        parents = {p for uid in frontier for p in built[uid].get("depends_on", {}).get("nodes", []) if p in built}
        frontier = sorted(parents - set(seen))
        seen += frontier
    ordered = start + sorted(set(seen) - set(start), key=lambda uid: relation[uid])
    return [
        (relation[uid], n["resource_type"], n["original_file_path"], n["checksum"]["checksum"])
        for uid in ordered
        for n in [built[uid]]
    ]
