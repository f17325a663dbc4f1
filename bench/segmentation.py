"""`segments bench segmentation`: the whole pipeline on N generated persons against the planted segments.

Runs the build job on bench data in a fresh `SEGMENTS_HOME` and compares the behavioural segments
with the generator's planted ones (adjusted Rand index over the customers the model placed), next to
the champion's metrics (MLflow) and the time of each stage. The report goes to
`<workdir>/segmentation_bench.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from bench.jobs import BenchFailed, JobRunner, run_on_bench_data


def bench_segmentation(
    persons: int, seed: int, workdir: Path | None, run_job: JobRunner, out: TextIO | None = None
) -> dict:
    """Run the build job on `persons` generated persons (data in `workdir`, default
    data/bench/segmentation-N, reused when it holds the same persons and seed); returns the report."""
    from ml.model_registry import CHAMPION, SEGMENTATION_MODEL, client, version_by_alias
    from ml.segmentation.accuracy import segment_agreement
    from orchestration.keys import BUILD_JOB
    from warehouse.connections import connect

    out = out or sys.stdout
    run = run_on_bench_data("segmentation", persons, seed, workdir, BUILD_JOB, run_job, out)
    with connect(run.settings.warehouse_path, read_only=True) as con:
        agreement = segment_agreement(con, run.data / "truth")
        fallbacks = dict(
            con.execute(
                "select coalesce(fallback_reason, 'placed by model'), count(*) from segments.customer_segments "
                "where segment_family = 'behavioural' group by 1"
            ).fetchall()
        )
    tracking_uri = run.settings.mlflow_tracking_uri
    champion = version_by_alias(tracking_uri, SEGMENTATION_MODEL, CHAMPION)
    if champion is None:
        raise BenchFailed(f"no version of {SEGMENTATION_MODEL} is {CHAMPION} after the run")
    mlflow_run = client(tracking_uri).get_run(champion.run_id)
    stages = run.stage_seconds()
    seconds = run.outcome.seconds
    report = {
        "persons_generated": persons,
        "seed": seed,
        **agreement,
        "assignments": fallbacks,
        "champion_version": str(champion.version),
        "algorithm": mlflow_run.data.params.get("algorithm"),
        "k": mlflow_run.data.params.get("k"),
        "metrics": {k: v for k, v in mlflow_run.data.metrics.items() if not k.startswith(("share_", "silhouette_"))},
        "training_seconds": round(stages.get("training", float("nan")), 1),
        "job_seconds": round(seconds, 1),
        "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
        "step_seconds": {k: round(v, 1) for k, v in run.outcome.step_seconds.items()},
    }
    path = run.workdir / "segmentation_bench.json"
    path.write_text(json.dumps(report, indent=2))
    m = report["metrics"]
    print(
        f"\nARI vs planted segments {agreement['adjusted_rand_index']:.3f} "
        f"on {agreement['customers_placed_by_model']:,} "
        f"customers placed by the model ({report['algorithm']}, k={report['k']}; "
        f"silhouette {m.get('silhouette', float('nan')):.3f}, "
        f"stability ARI {m.get('stability_ari', float('nan')):.3f}, "
        f"surrogate fidelity {m.get('surrogate_fidelity', float('nan')):.3f})",
        file=out,
    )
    print(f"training {report['training_seconds']} s; job {seconds:.1f} s; report: {path}", file=out)
    return report
