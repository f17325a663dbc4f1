"""Scoring: every customer gets exactly one segment per family, written back with what follows from it.

One scoring run (`score_customers`) places every customer of `marts.customer_features`:

- `behavioural`: by `customer_segmentation@champion`, under the definition the champion was trained
  with (it decides who may be placed); customers it may not place get a fallback segment with the
  reason (no profiling consent, too little history, no approved model yet);
- `rfm`: by the versioned RFM rule table; customers without profiling consent are "Not profiled".

The rows are written to `ml.customer_segment_assignments` chunk by chunk as the model places them,
then the run's segment profiles, the membership history and the playbook outbox follow in SQL.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import mlflow
import pandas as pd
import yaml

from ml.model_registry import SEGMENTATION_MODEL, client, load_by_alias
from ml.segmentation.definition import SegmentDefinition, load_definition, parse_definition
from ml.segmentation.fallback import fallback_assignments, fallback_reasons
from ml.segmentation.playbooks import evaluate_playbooks, load_playbooks
from ml.segmentation.rfm import FAMILY as RFM_FAMILY
from ml.segmentation.rfm import MODEL_NAME as RFM_MODEL_NAME
from ml.segmentation.rfm import rfm_assignments, rule_table
from ml.segmentation.store import (
    ASSIGNMENTS_TABLE,
    FEATURES_TABLE,
    definition_used_by_run,
    family_rows,
    update_membership_history,
    write_assignments,
    write_definition,
    write_profiles,
)
from warehouse.feature_registry import ELIGIBILITY_COLUMNS, load_registry, require_purpose

# Customers scored per `model.predict` call: bounds the memory the per-row strings (segment names, rule
# texts) take while scoring a million customers to one chunk's worth.
SCORING_CHUNK_ROWS = 200_000
# Columns every scoring run reads besides the champion's inputs: the RFM inputs.
RFM_COLUMNS = ("recency_days", "monetary_eur")


@dataclass(frozen=True)
class ScoringResult:
    """What one scoring run wrote (the figures a Dagster materialization shows)."""

    rows: int
    model_version: str
    definition_version: str
    rfm_rules_version: str
    profile_rows: int
    history: dict[str, int]
    playbooks_version: str
    playbook_results: dict[str, dict[str, int]]
    segment_sizes: dict[str, dict[str, int]] = field(default_factory=dict)


def assign_segments(model, features: pd.DataFrame) -> pd.DataFrame:
    """customer_id, segment_key, segment_name, reason for every customer of `features`."""
    # The model's signature names its input columns, all double; counts arrive as integers from DuckDB.
    columns = model.metadata.get_input_schema().input_names()
    model_input = features[columns].apply(pd.to_numeric, errors="coerce").astype("float64")
    pred = model.predict(model_input)
    return pd.DataFrame(
        {
            "customer_id": features["customer_id"].to_numpy(),
            "segment_key": pred["segment_key"].to_numpy(),
            "segment_name": pred["segment_name"].to_numpy(),
            "reason": ("rule: " + pred["rule"] + "; traits: " + pred["traits"]).to_numpy(),
        }
    )


def assign_segments_in_chunks(
    model, features: pd.DataFrame, chunk_rows: int = SCORING_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """`assign_segments` over `features` in chunks of `chunk_rows` customers, lazily (one chunk at a time)."""
    for start in range(0, len(features), chunk_rows):
        yield assign_segments(model, features.iloc[start : start + chunk_rows])


def trained_definition(tracking_uri: str, version: str, name: str = SEGMENTATION_MODEL) -> SegmentDefinition:
    """The segment definition a model version was trained under (the YAML logged with its run)."""
    run_id = client(tracking_uri).get_model_version(name, version).run_id
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/segment_definition.yaml")
    return parse_definition(yaml.safe_load(text))


def definition_version_of(tracking_uri: str, version: str, name: str = SEGMENTATION_MODEL) -> str:
    """The definition version a model version was trained under (its run's tag)."""
    mlflow_client = client(tracking_uri)
    run_id = mlflow_client.get_model_version(name, version).run_id
    return mlflow_client.get_run(run_id).data.tags.get("definition_version", "unknown")


def score_customers(con: duckdb.DuckDBPyConnection, tracking_uri: str, run_id: str) -> ScoringResult:
    """Place every customer in every family with the champion (if any) and the RFM rule table, then
    write profiles, history and playbook actions of `run_id` (see the module docstring)."""
    champion = load_by_alias(tracking_uri, SEGMENTATION_MODEL)
    # only what scoring needs: eligibility, the RFM inputs and the champion's declared input columns
    model_inputs = champion[0].metadata.get_input_schema().input_names() if champion else []
    columns = list(dict.fromkeys([*ELIGIBILITY_COLUMNS, *RFM_COLUMNS, *model_inputs]))
    require_purpose(columns[len(ELIGIBILITY_COLUMNS) :], "profiling", load_registry())
    features = con.execute(f"select {', '.join(columns)} from {FEATURES_TABLE} order by customer_id").df()
    if champion is None:
        # the definition this run's training step used (e.g. --definition), else the default
        used = definition_used_by_run(con, run_id)
        definition = parse_definition(used) if used else load_definition()
        model, version, definition_version = None, "none", definition.version
    else:
        model, version = champion
        definition_version = definition_version_of(tracking_uri, version)
        # the definition the champion was trained under decides who it may place
        definition = trained_definition(tracking_uri, version)
    reasons = fallback_reasons(features, definition)
    # rfm family: the behavioural definition's consent rule applies (no consent -> not scored, "Not
    # profiled"); its history rule does not (no purchase yet is an rfm segment of its own)
    rules = rule_table()
    rfm = rfm_assignments(features, (reasons == "no_profiling_consent").to_numpy())
    behavioural = {
        "family": "behavioural",
        "model_name": SEGMENTATION_MODEL,
        "model_version": version,
        "definition_version": definition_version,
        "scores": rfm,
    }
    if model is None:
        # the specific reason where there is one, else: no approved model yet
        reasons = reasons.fillna("no_champion_model")
    placed = features[reasons.isna()]
    unplaced = reasons.notna()
    write_definition(con, rules, run_id)
    # a generator: the model places one chunk of customers at a time, each written as it comes
    placed_rows = (
        (
            family_rows(chunk.assign(is_fallback=False, fallback_reason=None), **behavioural)
            for chunk in assign_segments_in_chunks(model, placed)
        )
        if model is not None
        else ()
    )
    rows = write_assignments(
        con,
        itertools.chain(
            placed_rows,
            [
                family_rows(
                    fallback_assignments(features.loc[unplaced, "customer_id"], reasons[unplaced]), **behavioural
                ),
                family_rows(
                    rfm,
                    family=RFM_FAMILY,
                    model_name=RFM_MODEL_NAME,
                    model_version=rules.version,
                    definition_version=rules.version,
                ),
            ],
        ),
        run_id=run_id,
    )
    del features, placed, rfm, behavioural, placed_rows  # the write-back below runs in DuckDB: free the frames
    profiles = write_profiles(con, run_id)
    history = update_membership_history(con, run_id)
    playbooks = load_playbooks()
    outbox = evaluate_playbooks(con, run_id, playbooks)
    by_family: dict[str, dict[str, int]] = {}
    for family, name, n in con.execute(
        f"select segment_family, segment_name, count(*) from {ASSIGNMENTS_TABLE} group by all order by 1, 3 desc"
    ).fetchall():
        by_family.setdefault(family, {})[name] = n
    return ScoringResult(
        rows=rows,
        model_version=version,
        definition_version=definition_version,
        rfm_rules_version=rules.version,
        profile_rows=profiles,
        history=history,
        playbooks_version=playbooks.version,
        playbook_results=outbox,
        segment_sizes=by_family,
    )
