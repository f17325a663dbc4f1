"""Training both prediction models as the `prediction_models` asset does, alone in its own process, timed.

`python -m bench.prediction_training --home H` reads the training set from the warehouse of SEGMENTS_HOME `H`
and runs `train_and_register` (back-test, final fit, plots, MLflow logging and registration) into a fresh
MLflow registry under `--out` (the home's own registry may already hold versions of this data, which would be
reused instead of trained). It prints one JSON object: seconds per phase, rows, the back-test metrics the gates
read and the process's peak resident memory, the figure the issue's memory budget is about (measured in its
own process: the build job before it peaks higher, in dbt's DuckDB). `segments bench prediction` runs it after
the build job.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def time_training(out: Path, seed: int) -> dict:
    """Read and train on the warehouse of the SEGMENTS_HOME in the environment (see the module doc)."""
    from ml.model_registry import ensure_tracking_db
    from ml.prediction.registry import train_and_register
    from ml.prediction.training_sets import read_training_set
    from orchestration.project import prediction_in_use
    from orchestration.settings import get_settings
    from warehouse.connections import connect

    settings = get_settings()
    definition = prediction_in_use(settings.project)
    started = time.perf_counter()
    with connect(settings.warehouse_path, read_only=True) as con:
        training_set = read_training_set(con, definition)
    read_s = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    registry = Path(tempfile.mkdtemp(prefix="registry-", dir=out))
    ensure_tracking_db(registry / "mlflow.db")
    started = time.perf_counter()
    outcome = train_and_register(
        training_set,
        definition,
        settings.project.prediction_definition.read_text(),
        seed=seed,
        tracking_uri=f"sqlite:///{registry / 'mlflow.db'}",
        artifacts_dir=registry / "mlartifacts",
        tags={"dagster_run_id": "bench"},
    )
    train_s = time.perf_counter() - started
    return {
        "definition": f"{definition.name} {definition.version}",
        "labelled_rows": len(training_set),
        "skipped_reason": outcome.skipped_reason,
        "value_candidate": outcome.value_candidate,
        "read_seconds": round(read_s, 1),
        "train_and_register_seconds": round(train_s, 1),
        "total_seconds": round(read_s + train_s, 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "metrics": outcome.metrics,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prediction_training", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="the SEGMENTS_HOME whose warehouse is read")
    parser.add_argument("--out", type=Path, required=True, help="where the fresh MLflow registry goes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ["SEGMENTS_HOME"] = str(args.home.resolve())  # before the settings are first read
    print(json.dumps(time_training(args.out.resolve(), args.seed), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
