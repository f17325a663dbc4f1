"""Every asset key, job name, pool and stage of the code location, said once.

Asset keys are `[schema, table]` of the warehouse table an asset writes (the BI copy: `serving`).
Model names come from `ml/model_registry.py`, which names each registered model like its asset.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from ml.model_registry import SEGMENTATION_MODEL
from warehouse.contracts import CONTRACTS

# --- ingest ---
RAW_KEYS = [dg.AssetKey([c.source, c.table]) for c in CONTRACTS]
LEDGER_KEY = dg.AssetKey(["audit", "ingest_ledger"])
QUARANTINE_KEY = dg.AssetKey(["audit", "quarantine"])
LAWFUL_BASES_KEY = dg.AssetKey(["audit", "lawful_bases"])
# --- dbt models other assets name ---
IDENTITY_CANDIDATES_KEY = dg.AssetKey(["intermediate", "int_identity_candidates"])
CUSTOMERS_KEY = dg.AssetKey(["marts", "customers"])
FEATURES_KEY = dg.AssetKey(["marts", "customer_features"])
CUSTOMER_SEGMENTS_KEY = dg.AssetKey(["segments", "customer_segments"])
# --- identity ---
SOURCE_RECORDS_KEY = dg.AssetKey(["identity", "customer_source_records"])
# --- ml ---
MODEL_KEY = dg.AssetKey(["ml", SEGMENTATION_MODEL])
CHAMPION_KEY = dg.AssetKey(["ml", f"{SEGMENTATION_MODEL}_champion"])
ASSIGNMENTS_KEY = dg.AssetKey(["ml", "customer_segment_assignments"])
SNAPSHOTS_KEY = dg.AssetKey(["marts", "customer_feature_snapshots"])
OUTCOMES_KEY = dg.AssetKey(["marts", "customer_outcomes"])
CHURN_MODEL_KEY = dg.AssetKey(["ml", "churn_model"])
VALUE_MODEL_KEY = dg.AssetKey(["ml", "value_model"])
CHURN_CHAMPION_KEY = dg.AssetKey(["ml", "churn_model_champion"])
VALUE_CHAMPION_KEY = dg.AssetKey(["ml", "value_model_champion"])
PREDICTIONS_KEY = dg.AssetKey(["ml", "customer_predictions"])
# --- serving ---
BI_COPY_KEY = dg.AssetKey(["serving", "bi_copy"])

# --- who answers for each layer (asset owners in the UI, by asset group) ---
DATA_ENGINEERING, ANALYTICS = "team:data-engineering", "team:analytics"
GROUP_OWNERS = {
    "ingest": DATA_ENGINEERING,
    "staging": DATA_ENGINEERING,
    "reference": DATA_ENGINEERING,
    "identity": DATA_ENGINEERING,
    "marts": DATA_ENGINEERING,
    "ml": ANALYTICS,
    "segments": ANALYTICS,
    "activation": ANALYTICS,
    "serving": DATA_ENGINEERING,
}

# --- the code location (its name also in workspace.yaml) and jobs and pools ---
CODE_LOCATION = "customer_segments"
# How the Dagster UI labels the location's (single) repository in a run's tags: its job pages list the runs of
# their job whose `.dagster/repository` tag is this label, and runs of the command line carry it too.
REPOSITORY_LABEL = f"__repository__@{CODE_LOCATION}"
BUILD_JOB = "build_segments_job"
IDENTITY_JOB = "resolve_identities_job"
# Every asset and check that opens the DuckDB warehouse: one writer, and no reader while it writes.
WAREHOUSE_POOL = "warehouse"

# --- stages: every op carries its stage as an op tag; the CLI's progress and the benchmark read it ---
STAGE_TAG = "segments/stage"
STAGES = {
    "ingest": "ingest landing files -> raw, ledger, quarantine",
    "dbt": "dbt build (+ tests)",
    "identity": "identity resolution -> stable customer ids",
    "quality": "data quality (GX suites, reconciliation)",
    "training": "train, register and promote the segmentation, churn and value models (MLflow)",
    "scoring": "score customers -> segments, history, outbox",
    "publish": "publish the read-only BI copy",
}


def stage(name: str) -> dict[str, str]:
    """The op tags of an op of stage `name` (one of STAGES)."""
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}: one of {sorted(STAGES)}")
    return {STAGE_TAG: name}


def step_stages(job: dg.JobDefinition) -> Mapping[str, str]:
    """Step key (= op name in an in-process run) -> stage, for every op of `job` that has one."""
    return {
        node.name: node.definition.tags[STAGE_TAG]
        for node in job.graph.nodes
        if STAGE_TAG in (node.definition.tags or {})
    }
