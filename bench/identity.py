"""`segments bench identity`: identity resolution on N generated persons against the planted truth.

Runs the identity job (ingest, the person staging models, identity resolution) on bench data in a
fresh `SEGMENTS_HOME` and scores the resolved customers against the generator's persons: pairwise
precision, recall and F1, cluster accuracy, and the time of the identity stage and of its own steps.
The report goes to `<workdir>/identity_bench.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from bench.jobs import JobRunner, run_on_bench_data


def bench_identity(
    persons: int, seed: int, workdir: Path | None, run_job: JobRunner, out: TextIO | None = None
) -> dict:
    """Run the identity job on `persons` generated persons (data in `workdir`, default
    data/bench/identity-N, reused when it holds the same persons and seed); returns the report."""
    from ml.identity.evaluate import evaluate
    from orchestration.keys import IDENTITY_JOB
    from warehouse.connections import connect

    out = out or sys.stdout
    run = run_on_bench_data("identity", persons, seed, workdir, IDENTITY_JOB, run_job, out)
    with connect(run.settings.warehouse_path, read_only=True) as con:
        con.execute("create temp table assigned as select record_id, customer_id from identity.customer_source_records")
        accuracy = evaluate(con, "assigned", run.data / "truth", "staging.stg_events__events")
        resolution = con.execute(
            "select records, customers, bridges, reference_conflicts, vetoed_pairs, multi_source_share, timings "
            "from identity.resolution_runs order by resolved_at desc limit 1"
        ).fetchall()[0]
    stages = run.stage_seconds()
    identity_s = stages.get("identity", float("nan"))
    timings = json.loads(resolution[6])
    report = {
        "persons_generated": persons,
        "seed": seed,
        "records": resolution[0],
        "resolved_customers": resolution[1],
        "bridges_cut": resolution[2],
        "reference_conflicts": resolution[3],
        "vetoed_pairs": resolution[4],
        "multi_source_share": resolution[5],
        "identity_seconds": round(identity_s, 1),
        "identity_stage_seconds": timings,
        "job_seconds": round(run.outcome.seconds, 1),
        "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
        "step_seconds": {k: round(v, 1) for k, v in run.outcome.step_seconds.items()},
        **accuracy.as_dict(),
    }
    path = run.workdir / "identity_bench.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\n{accuracy.describe()}", file=out)
    print(
        f"identity stage {identity_s:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}); "
        f"job {run.outcome.seconds:.1f} s; bridges cut {resolution[2]:,}, references refused {resolution[3]:,}",
        file=out,
    )
    print(f"report: {path}", file=out)
    return report
