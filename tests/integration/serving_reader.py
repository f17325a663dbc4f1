"""A BI reader in its own process: query the serving copy in a loop until told to stop.

    python serving_reader.py SERVING_DIR STOP_FILE RESULT_JSON

Imports nothing from the project, like an external BI tool. Each round reads

- `SERVING_DIR/bi.duckdb` opened read-only: every table's row count must equal the count recorded in
  the same file (`serving.published_tables`); `segments.customer_segments` must come from one run,
  and per family its row count must equal the summed `customers` of that run's rows in
  `segments.segment_profiles` (two tables of one version agree with each other);
- the Parquet files of the version `current` resolves to, against that version's manifest.json, with
  the same cross-table check.

Any exception (lock error, missing file, half-written file) and any inconsistency is recorded; the
loop goes on. At the end RESULT_JSON gets reads, versions seen (with the time of each read) and errors.
"""

import json
import os
import sys
import time
from pathlib import Path

import duckdb

CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def cross_check(counts: dict[str, int], profile_sums: dict[str, int]) -> str | None:
    """None when the assignments per family match the profile sums of the same run."""
    return None if counts == profile_sums else f"assignments {counts} != profiles {profile_sums}"


def read_duckdb(path: Path) -> tuple[str, list[str]]:
    problems = []
    with duckdb.connect(str(path), read_only=True, config={**CONFIG, "access_mode": "READ_ONLY"}) as con:
        version, run_id = con.execute("select version, run_id from serving.publication").fetchall()[0]
        for schema, table, recorded in con.execute(
            "select table_schema, table_name, row_count from serving.published_tables"
        ).fetchall():
            actual = con.execute(f"select count(*) from {schema}.{table}").fetchall()[0][0]
            if actual != recorded:
                problems.append(f"{version} {schema}.{table}: {actual} rows, recorded {recorded}")
        rows, runs, run = con.execute(
            "select count(*), count(distinct dagster_run_id), min(dagster_run_id) from segments.customer_segments"
        ).fetchall()[0]
        if rows and runs != 1:
            problems.append(f"{version}: customer_segments from {runs} runs")
        counts = dict(
            con.execute("select segment_family, count(*) from segments.customer_segments group by 1").fetchall()
        )
        sums = dict(
            con.execute(
                "select segment_family, sum(customers)::bigint from segments.segment_profiles "
                "where dagster_run_id = ? group by 1",
                [run],
            ).fetchall()
        )
        if (problem := cross_check(counts, sums)) is not None:
            problems.append(f"{version} duckdb: {problem}")
    return version, problems


def read_parquet(serving: Path) -> tuple[str, list[str]]:
    version_dir = serving / os.readlink(serving / "current")  # resolve once: every file of one version
    manifest = json.loads((version_dir / "manifest.json").read_text())
    version, problems = manifest["version"], []
    with duckdb.connect(config=CONFIG) as con:
        for table, entry in manifest["tables"].items():
            n = con.execute("select count(*) from read_parquet(?)", [str(version_dir / entry["parquet"])]).fetchall()[
                0
            ][0]
            if n != entry["rows"]:
                problems.append(f"{version} {table}.parquet: {n} rows, manifest {entry['rows']}")
        segments = str(version_dir / manifest["tables"]["segments.customer_segments"]["parquet"])
        profiles = str(version_dir / manifest["tables"]["segments.segment_profiles"]["parquet"])
        run = con.execute("select min(dagster_run_id) from read_parquet(?)", [segments]).fetchall()[0][0]
        counts = dict(
            con.execute("select segment_family, count(*) from read_parquet(?) group by 1", [segments]).fetchall()
        )
        sums = dict(
            con.execute(
                "select segment_family, sum(customers)::bigint from read_parquet(?) "
                "where dagster_run_id = ? group by 1",
                [profiles, run],
            ).fetchall()
        )
        if (problem := cross_check(counts, sums)) is not None:
            problems.append(f"{version} parquet: {problem}")
    return version, problems


def main(serving: Path, stop: Path, result: Path) -> None:
    reads, parquet_reads, waits = [], 0, 0
    errors: list[str] = []
    inconsistencies: list[str] = []
    while not stop.exists():
        if not (serving / "bi.duckdb").exists():
            waits += 1
            time.sleep(0.05)
            continue
        try:
            version, problems = read_duckdb(serving / "bi.duckdb")
            reads.append([time.time(), version])
            inconsistencies += problems
            version, problems = read_parquet(serving)
            parquet_reads += 1
            inconsistencies += problems
        except Exception as err:  # noqa: BLE001 - every failure is what this test looks for
            errors.append(f"{type(err).__name__}: {err}")
        time.sleep(0.25)  # a round costs ~0.1 s of CPU: leave the rest to the pipeline on small machines
    result.write_text(
        json.dumps(
            {
                "reads": reads,
                "parquet_reads": parquet_reads,
                "waits": waits,
                "errors": errors,
                "inconsistencies": inconsistencies,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
