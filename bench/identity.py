"""`segments bench identity`: identity resolution against a known truth, through the product's own path.

Two kinds of data, both delivered as landing files and run through the identity job (ingest, raw
checks, the person staging models, identity resolution) in a fresh `SEGMENTS_HOME`:

- **generated**: N persons of the demo generator (`--customers`), optionally in the "no contact
  details" mode (`--no-contact-share 0.3`: 30% of persons with neither e-mail nor phone anywhere);
- **labelled public sets** (`--set historical_50k|fake_1000`, `bench/identity_sets.py`): one CRM
  customers file each; `--labels` also hands the set's clerical labels to identity as the project's
  labelled pairs (they then set the match threshold).

The report: pairwise precision, recall and F1 (over the records that reached identity, and recall over
every record of the truth: a record the ingest quarantined counts as missed), cluster accuracy, what
the model compared and linked at, and the time of the identity stage and of its own steps. It goes to
`<workdir>/identity_bench.json`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from bench.jobs import BenchFailed, JobRunner, run_on_bench_data


def _report(run_settings, data: Path, workdir: Path, outcome, stages: dict[str, float], extra: dict, out) -> dict:
    """Score the run's customers against `data/truth` and write the report."""
    from ml.identity.evaluate import evaluate
    from warehouse.connections import connect

    with connect(run_settings.warehouse_path, read_only=True) as con:
        con.execute("create temp table assigned as select record_id, customer_id from identity.customer_source_records")
        accuracy = evaluate(con, "assigned", data / "truth", "staging.stg_events__events")
        resolution = con.execute(
            """select records, customers, bridges, reference_conflicts, vetoed_pairs, multi_source_share, timings,
                      linkage
               from identity.resolution_runs order by resolved_at desc limit 1"""
        ).fetchall()[0]
        true_pairs_all = con.execute(
            f"""select coalesce(sum(n * (n - 1) // 2), 0) from (
                    select count(*) as n from read_parquet('{str(data / "truth" / "source_records.parquet")}')
                    where source_table <> 'events.events' group by person_id)"""
        ).fetchall()[0][0]
        quarantined = con.execute("select count(*) from audit.quarantine").fetchall()[0][0]
    identity_s = stages.get("identity", float("nan"))
    timings = json.loads(resolution[6])
    linkage = json.loads(resolution[7] or "{}")
    report = {
        **extra,
        "records": resolution[0],
        "resolved_customers": resolution[1],
        "rows_quarantined": quarantined,
        "bridges_cut": resolution[2],
        "reference_conflicts": resolution[3],
        "vetoed_pairs": resolution[4],
        "multi_source_share": resolution[5],
        "identity_seconds": round(identity_s, 1),
        "identity_stage_seconds": timings,
        "job_seconds": round(outcome.seconds, 1),
        "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
        "step_seconds": {k: round(v, 1) for k, v in outcome.step_seconds.items()},
        "linkage": linkage,
        **accuracy.as_dict(),
    }
    if extra.get("kind") == "labelled_set":
        # every record of the set is a CRM record: what the ingest quarantined never reached identity
        report["true_pairs_all_records"] = int(true_pairs_all)
        report["recall_all_records"] = accuracy.correct_pairs / true_pairs_all if true_pairs_all else 1.0
        p, r = accuracy.precision, report["recall_all_records"]
        report["f1_all_records"] = 2 * p * r / (p + r) if p + r else 0.0
    path = workdir / "identity_bench.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\n{accuracy.describe()}", file=out)
    if "f1_all_records" in report:
        print(
            f"over all {accuracy.records_evaluated + accuracy.truth_records_not_candidates:,} records of the set "
            f"({quarantined:,} rows quarantined by the ingest count as missed): recall "
            f"{report['recall_all_records']:.4f}  F1 {report['f1_all_records']:.4f}",
            file=out,
        )
    threshold = linkage.get("match_threshold") or {}
    print(
        f"compared {', '.join(linkage.get('comparisons', [])) or 'nothing'}; "
        f"{len(linkage.get('blocking_rules', {}))} blocking rules, "
        f"{sum(linkage.get('blocking_rules', {}).values()):,} pairs; match threshold "
        f"{threshold.get('value', float('nan')):.4f} ({threshold.get('source', 'none')})",
        file=out,
    )
    print(
        f"identity stage {identity_s:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}); "
        f"job {outcome.seconds:.1f} s; bridges cut {resolution[2]:,}, references refused {resolution[3]:,}",
        file=out,
    )
    print(f"report: {path}", file=out)
    return report


def bench_identity(
    persons: int,
    seed: int,
    workdir: Path | None,
    run_job: JobRunner,
    out: TextIO | None = None,
    no_contact_share: float = 0.0,
) -> dict:
    """Run the identity job on `persons` generated persons (data in `workdir`, default
    data/bench/identity-N, reused when it holds the same persons, seed and mode); returns the report."""
    from orchestration.keys import IDENTITY_JOB

    out = out or sys.stdout
    volumes = {"no_contact_share": no_contact_share} if no_contact_share else {}
    kind = "identity" if not no_contact_share else f"identity-nocontact{no_contact_share:g}"
    run = run_on_bench_data(kind, persons, seed, workdir, IDENTITY_JOB, run_job, out, **volumes)
    extra = {"kind": "generated", "persons_generated": persons, "seed": seed, "no_contact_share": no_contact_share}
    return _report(run.settings, run.data, run.workdir, run.outcome, run.stage_seconds(), extra, out)


def bench_identity_set(
    name: str,
    workdir: Path | None,
    run_job: JobRunner,
    out: TextIO | None = None,
    root: Path | None = None,
    labels: bool = False,
) -> dict:
    """Deliver the labelled set `name` as a CRM customers file, run the identity job on it in a fresh home
    under `workdir` (default data/bench/identity-<name>) and score it; `labels`: give identity the set's
    clerical labels as the project's labelled pairs."""
    from bench.identity_sets import DEFAULT_ROOT, SETS, write_labels, write_set
    from orchestration.keys import IDENTITY_JOB, STAGES
    from orchestration.settings import get_settings

    out = out or sys.stdout
    if name not in SETS:
        raise BenchFailed(f"unknown set {name!r} (one of {', '.join(SETS)})")
    labelled = SETS[name]
    work = (workdir or Path(f"data/bench/identity-{name}{'-labels' if labels else ''}")).resolve()
    data, home, identity_dir = work / "data", work / "home", work / "identity"
    for folder in (data, home, identity_dir):
        shutil.rmtree(folder, ignore_errors=True)
    t0 = time.monotonic()
    records = write_set(labelled, root or DEFAULT_ROOT, data)
    pairs = write_labels(labelled, root or DEFAULT_ROOT, identity_dir / "labels.csv") if labels else 0
    print(
        f"identity bench: set {name}, {records:,} records delivered as crm/customers in {time.monotonic() - t0:.1f} s"
        + (f"; {pairs:,} labelled pairs in {identity_dir / 'labels.csv'}" if labels else ""),
        file=out,
        flush=True,
    )
    settings = dataclasses.replace(get_settings(), home=home, landing_dir=data / "landing", identity_dir=identity_dir)
    outcome = run_job(settings, IDENTITY_JOB)
    if not outcome.success:
        raise BenchFailed(f"{IDENTITY_JOB} FAILED (log: {outcome.log_path})")
    stages: dict[str, float] = {}
    for step, took in outcome.step_seconds.items():
        stage = outcome.step_stages.get(step)
        if stage in STAGES:
            stages[stage] = stages.get(stage, 0.0) + took
    extra = {
        "kind": "labelled_set",
        "set": name,
        "records_delivered": records,
        "labels": labels,
        "labelled_pairs": pairs,
    }
    return _report(settings, data, work, outcome, stages, extra, out)
