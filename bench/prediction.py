"""`segments bench prediction`: the churn and value models on N generated persons, against the planted churn.

Runs the build job on bench data in a fresh `SEGMENTS_HOME`, then back-tests the project's prediction
definition on the built snapshots (timed: what training both models costs) and scores the churn model of the
latest evaluated date against the **planted** outcome: the generator gives every person a buying window
(`active_from`..`active_until` in `truth/persons.parquet`), so a person whose window closed by the date has
truly churned, whatever the noise of their last orders. A customer's planted window is the one of the person
behind most of its source records. Beside it: the AUC against the observed label (no order in the horizon).
Before that, training both models exactly as the `prediction_models` asset does runs alone in a child process
(`bench/prediction_training.py`), for its seconds and peak memory. The report goes to
`<workdir>/prediction_bench.json`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from bench.jobs import BenchFailed, JobRunner, run_on_bench_data


def time_training_alone(home: Path, out: Path, seed: int) -> dict:
    """`bench.prediction_training` in a child process: its own seconds and peak memory, nothing of the job's."""
    command = ["-m", "bench.prediction_training", "--home", str(home), "--out", str(out), "--seed", str(seed)]
    proc = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchFailed(f"training alone failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_prediction(
    persons: int, seed: int, workdir: Path | None, run_job: JobRunner, out: TextIO | None = None
) -> dict:
    from ml.prediction.backtest import backtest, fit_final
    from ml.prediction.definition import load_prediction_definition
    from ml.prediction.metrics import auc
    from ml.prediction.training_sets import read_training_set
    from ml.segmentation.accuracy import planted_per_customer
    from orchestration.keys import BUILD_JOB
    from warehouse.connections import connect

    out = out or sys.stdout
    run = run_on_bench_data("prediction", persons, seed, workdir, BUILD_JOB, run_job, out)
    training = time_training_alone(run.settings.home, run.workdir / "training", seed)
    print(
        f"training both models alone (what the prediction_models asset does): {training['total_seconds']} s "
        f"(read {training['read_seconds']} s), peak {training['peak_rss_gib']} GiB",
        file=out,
        flush=True,
    )
    definition = load_prediction_definition()
    truth = run.data / "truth"
    with connect(run.settings.warehouse_path, read_only=True) as con:
        training_set = read_training_set(con, definition)
        planted = con.execute(*planted_per_customer(truth, "active_until")).df()
    started = time.perf_counter()
    result = backtest(training_set, definition, seed=seed)
    backtest_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fit_final(training_set, definition, result.best_value_candidate, seed=seed)
    final_seconds = time.perf_counter() - started
    c = result.curves
    day = c["as_of_date"]
    until = dict(zip(planted["customer_id"], planted["planted"].astype(str), strict=True))
    known = [i for i, cid in enumerate(c["customer_id"]) if cid in until]
    truly_churned = [until[c["customer_id"][i]] <= day for i in known]
    report = {
        "persons_generated": persons,
        "seed": seed,
        "definition": f"{definition.name} {definition.version}",
        "labelled_rows": len(training_set),
        "evaluated_date": day,
        "customers_scored": len(c["customer_id"]),
        "customers_with_planted_window": len(known),
        "planted_churn_rate": sum(truly_churned) / max(len(known), 1),
        "churn_auc_vs_planted": auc(truly_churned, c["risk"][known]),
        "recency_auc_vs_planted": auc(truly_churned, c["recency"][known]),
        "bg_nbd_auc_vs_planted": auc(truly_churned, c["bg_nbd"][known]),
        "churn_auc_vs_observed": result.dates[-1].metrics["auc"],
        "backtest": result.summary(),
        "backtest_seconds": round(backtest_seconds, 1),
        "final_fit_seconds": round(final_seconds, 1),
        "training_alone": training,
        "job_seconds": round(run.outcome.seconds, 1),
        "stage_seconds": {k: round(v, 1) for k, v in run.stage_seconds().items()},
    }
    path = run.workdir / "prediction_bench.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(
        f"\nchurn AUC vs planted churn {report['churn_auc_vs_planted']:.3f} on {len(known):,} customers at {day} "
        f"(recency {report['recency_auc_vs_planted']:.3f}, BG/NBD {report['bg_nbd_auc_vs_planted']:.3f}; "
        f"vs observed label {report['churn_auc_vs_observed']:.3f}); back-test {backtest_seconds:.1f} s, "
        f"final fit {final_seconds:.1f} s; report: {path}",
        file=out,
    )
    return report
