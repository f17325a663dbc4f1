"""The project's source mappings applied to new deliveries, before the ingest.

A user's export files arrive under `<landing>/<mapping name>/`; every mapping of the project
(`mappings/*.yaml`, warehouse/mapping.py) turns each new, complete file into contract-shaped Parquet
files under `$SEGMENTS_HOME/mapped/<source>/<table>/`, which the ingest then loads like any landing
file (ledger, quarantine, reconciliation). A file mapped before, unchanged (size, mtime, ctime) under
the same mapping content, is not read again: a delivery costs its own size. A file still being written
waits for a later run, as in the ingest. A file the mapping cannot read (a stray quote, a missing
column) is a failure with its reason; the other files go on.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from warehouse.connections import OFFLINE_CONFIG, use_utc
from warehouse.contracts import DEFAULT_BASE_CURRENCY, contracts_for
from warehouse.ingest import DONE_MARKER_SUFFIX, complete_files
from warehouse.mapping import MappedFile, MappingError, SourceMapping, load_mapping, map_file, output_name, source_files

STATE_FILE = "_mapped_files.json"  # in the mapped folder: what was mapped, from which file and mapping


@dataclass
class MappingRun:
    """What one pass over the mappings did."""

    mapped: dict[str, dict[str, MappedFile]] = field(default_factory=dict)  # source file -> table -> output
    unchanged: list[str] = field(default_factory=list)  # source files mapped before, not read again
    waiting: dict[str, str] = field(default_factory=dict)  # source file -> why it waits
    failures: dict[str, str] = field(default_factory=dict)  # source file or mapping -> the error

    def describe(self) -> str:
        lines = [f"{path}: {error}" for path, error in self.failures.items()]
        return "\n".join(lines)


def load_mappings(mappings_dir: Path | None, default_time_zone: str = "UTC") -> list[SourceMapping]:
    """Every `*.yaml` / `*.yml` of the project's mappings folder, validated (MappingError at the first bad one);
    two mappings of one name are refused. `default_time_zone`: the project's, for mappings that name none."""
    if mappings_dir is None or not Path(mappings_dir).is_dir():
        return []
    files = sorted(p for p in Path(mappings_dir).iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    mappings = [load_mapping(p, default_time_zone) for p in files]
    names = [m.name for m in mappings]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise MappingError(f"{mappings_dir}: two mappings are named {duplicate!r}: each reads <landing>/<name>/")
    return mappings


def _mapping_digest(mapping: SourceMapping) -> str:
    """The mapping file's content and the time zone it applies (the project's when the file names none):
    a change of either maps every source file again."""
    content = Path(mapping.path).read_bytes()
    return hashlib.sha256(content + b"\0" + mapping.time_zone.encode()).hexdigest()


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def apply_mappings(
    mappings: list[SourceMapping],
    landing_dir: Path,
    out_dir: Path,
    *,
    settle_seconds: float,
    max_wait_seconds: float | None = None,
) -> MappingRun:
    """Map every new or changed, complete source file of every mapping into `out_dir` (see the module
    docstring); each output gets a `.done` marker, so the ingest reads it at once. Young files are
    waited for at most `max_wait_seconds` (default 3 x `settle_seconds`), as in the ingest."""
    run = MappingRun()
    if not mappings:
        return run
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / STATE_FILE
    state: dict[str, dict] = json.loads(state_path.read_text()) if state_path.exists() else {}
    con = use_utc(duckdb.connect(config=OFFLINE_CONFIG))
    try:
        for mapping in mappings:
            digest = _mapping_digest(mapping)
            folder = Path(landing_dir) / mapping.name
            try:
                files = source_files(mapping, landing_dir)
            except MappingError as err:
                run.failures[str(mapping.path)] = str(err)
                continue

            def seen(path: Path, st: os.stat_result, digest: str = digest) -> bool:
                before = state.get(str(path))
                return bool(before) and before["stat"] == _stat_key(st) and before["mapping"] == digest

            wait = 3 * settle_seconds if max_wait_seconds is None else max_wait_seconds
            complete, waiting = complete_files(files, settle_seconds, wait, seen)
            run.waiting.update({str(p): message for p, message in waiting.items()})
            for path, st in complete.items():
                if seen(path, st):
                    run.unchanged.append(str(path))
                    continue
                # the mapping's digest in the name: a corrected mapping delivers new files (rows equal to
                # those loaded before count as already loaded), never rewrites a file the ingest loaded
                name = f"{output_name(mapping, path, path.relative_to(folder))}__m{digest[:8]}"
                try:
                    outputs = map_file(con, mapping, path, out_dir, name=name)
                except MappingError as err:
                    run.failures[str(path)] = str(err)
                    continue
                for output in outputs.values():
                    output.path.with_name(output.path.name + DONE_MARKER_SUFFIX).touch()
                run.mapped[str(path)] = outputs
                state[str(path)] = {
                    "stat": _stat_key(st),
                    "mapping": digest,
                    "outputs": [str(o.path) for o in outputs.values()],
                }
                tmp = state_path.with_suffix(".tmp")
                tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
                tmp.replace(state_path)
    finally:
        con.close()
    return run


@dataclass(frozen=True)
class TrialLoad:
    """`segments map check`: what each source file would give, per table, before any run."""

    checks: list  # warehouse.mapping.MappingCheck per source file and table
    files: list  # warehouse.ingest.FileResult per mapped file (loaded into a throw-away warehouse)
    reasons: dict[str, list[tuple[str, int]]]  # table -> (reason kind, rows) quarantined in the trial
    failures: dict[str, str]  # source file or mapping -> the error


def trial_load(
    mappings: list[SourceMapping], landing_dir: Path, work_dir: Path, base_currency: str = DEFAULT_BASE_CURRENCY
) -> TrialLoad:
    """Map every source file of `mappings` into `work_dir` and load the result, after the contract-shaped
    files of `landing_dir`, into a throw-away in-memory warehouse: per table what would load and what
    would be quarantined, by reason. References are checked against these files only (the real
    warehouse is not read), so an order whose account was delivered earlier shows as orphan_reference
    here and loads in a run."""
    from warehouse.ingest import QUARANTINE_TABLE, ingest_landing
    from warehouse.mapping import check_mapping

    checks, failures = [], {}
    con = use_utc(duckdb.connect(config=OFFLINE_CONFIG))
    try:
        for mapping in mappings:
            try:
                files = source_files(mapping, landing_dir)
                checks += check_mapping(con, mapping, files)
            except MappingError as err:
                failures[str(mapping.path)] = str(err)
        run = apply_mappings(mappings, landing_dir, work_dir, settle_seconds=0)
        failures.update(run.failures)
        # the contract-shaped files waiting in the landing too (e.g. FX rates), as a run loads them
        contracts = contracts_for(base_currency)
        report = ingest_landing(con, Path(landing_dir), contracts=contracts, settle_seconds=0)
        report.files += ingest_landing(con, Path(work_dir), contracts=contracts, settle_seconds=0).files
        reasons: dict[str, list[tuple[str, int]]] = {}
        for table, kind, n in con.execute(
            f"select source_table, reason_kind, count(*) from {QUARANTINE_TABLE} group by all order by 1, 3 desc"
        ).fetchall():
            reasons.setdefault(table, []).append((kind, n))
    finally:
        con.close()
    return TrialLoad(checks, report.files, reasons, failures)
