"""Scoring: every customer gets exactly one segment per family, written back with what follows from it.

One scoring run (`score_customers`) places every customer of `marts.customer_features`:

- `behavioural`: by `customer_segmentation@champion`, under the definition the champion was trained
  with (it decides who may be placed); customers it may not place get a fallback segment with the
  reason (no profiling consent, too little history, no approved model yet);
- `rfm`: by the versioned RFM rule table; customers without profiling consent are "Not profiled";
- families other packages place, handed in as `extra_families` (the pipeline hands in `predictive`,
  `ml/prediction/segments.py`): written like these two.

The model places customers chunk by chunk into a temporary staging table (nothing of the warehouse is
written while pandas and the model work). Then everything the run writes is committed in **one
transaction**, or nothing is: the RFM rule table's definition record, the assignments (replaced whole),
the run's segment profiles, the membership history with the run's record in `ml.segment_scoring_runs`
(the step's run record: a run that has one has scored, completely), and the playbooks' actions (the
outbox) and alerts. A run killed or failing before the commit leaves the warehouse as it was.

Repeating scoring duplicates nothing that represents state:

- the same run again (a retried step): the assignments are replaced, the run's profiles replaced, its
  record and history instant kept, no period opened or closed twice, no action or alert emitted twice
  (their keys are the membership periods);
- a new run on unchanged data and the same champion (what a recovery run does after a run died once its
  scoring had committed, e.g. killed while publishing): it writes its own run record, the assignments
  (stamped with its id), and its own profiles (`ml.segment_profiles` is a log per scoring run, keyed by
  run, family and segment: the current profile is the one of the assignments' run). It opens and closes
  no history period, so there is no transition (dbt's `segment_transitions` shows every customer on the
  diagonal for it) and no new action or alert.
- What the dead run committed keeps the dead run's id: its run record (how far it got: it scored), the
  history periods it opened and closed, its profiles, and the actions and alerts it emitted; the
  recovery does not re-emit them under its own id, so an outbox consumer sees each action once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import mlflow
import pandas as pd
import yaml

from ml.model_registry import SEGMENTATION_MODEL, client, load_by_alias
from ml.segmentation.definition import SegmentDefinition, load_definition, parse_definition
from ml.segmentation.fallback import NOT_PROFILED_REASONS, fallback_assignments, fallback_reasons
from ml.segmentation.playbooks import Playbooks, emit_playbooks, load_playbooks
from ml.segmentation.rfm import FAMILY as RFM_FAMILY
from ml.segmentation.rfm import MODEL_NAME as RFM_MODEL_NAME
from ml.segmentation.rfm import rfm_assignments, rule_table
from ml.segmentation.store import (
    ASSIGNMENTS_TABLE,
    FEATURES_TABLE,
    drop_stage,
    family_rows,
    fold_membership_history,
    insert_profiles,
    publish_assignments,
    stage_assignments,
    write_definition,
)
from warehouse.connections import transaction
from warehouse.feature_registry import ELIGIBILITY_COLUMNS, load_registry, require_purpose

# Customers scored per `model.predict` call: bounds the memory the per-row strings (segment names, rule
# texts) take while scoring a million customers to one chunk's worth.
SCORING_CHUNK_ROWS = 200_000
# Columns every scoring run reads besides the champion's inputs: the RFM inputs.
RFM_COLUMNS = ("recency_days", "monetary_base")


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


class ExtraFamily(Protocol):
    """A segment family another package places (e.g. the predictive family, `ml/prediction/segments.py`),
    written by `score_customers` with the others: same staging checks, transaction, history and profiles."""

    @property
    def family(self) -> str: ...

    @property
    def definition(self) -> Any: ...  # recorded in ml.segment_definitions (`write_definition`)

    @property
    def columns(self) -> tuple[str, ...]: ...  # features it reads besides eligibility and the RFM inputs

    def assign(self, features: pd.DataFrame, rfm: pd.DataFrame) -> pd.DataFrame:
        """Its rows (`family_rows`) for every customer of `features`, given the run's rfm rows."""
        ...


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


def score_customers(
    con: duckdb.DuckDBPyConnection,
    tracking_uri: str,
    run_id: str,
    definition: SegmentDefinition | None = None,
    playbooks: Playbooks | None = None,
    extra_families: Sequence[ExtraFamily] = (),
) -> ScoringResult:
    """Place every customer in every family with the champion (if any) and the RFM rule table, then
    write assignments, profiles, history, run record and playbook actions of `run_id` in one transaction
    (see the module docstring: what a repeat and a recovery run write).

    `definition`: the definition in use (default: the embedded one); its `model_name` says whose
    champion places customers, and it decides who may be placed while that model has no champion.
    `playbooks`: the actions and alerts to emit (default: the embedded playbooks).
    `extra_families`: families placed by other packages (the predictive family), written with these."""
    definition = definition or load_definition()
    model_name = definition.model_name
    champion = load_by_alias(tracking_uri, model_name)
    # only what scoring needs: eligibility, the RFM inputs and the champion's declared input columns
    model_inputs = champion[0].metadata.get_input_schema().input_names() if champion else []
    extra_columns = [c for family in extra_families for c in family.columns]
    columns = list(dict.fromkeys([*ELIGIBILITY_COLUMNS, *RFM_COLUMNS, *model_inputs, *extra_columns]))
    require_purpose(columns[len(ELIGIBILITY_COLUMNS) :], "profiling", load_registry())
    features = con.execute(f"select {', '.join(columns)} from {FEATURES_TABLE} order by customer_id").df()
    if champion is None:
        model, version, definition_version = None, "none", definition.version
    else:
        model, version = champion
        definition_version = definition_version_of(tracking_uri, version, model_name)
        # the definition the champion was trained under decides who it may place
        definition = trained_definition(tracking_uri, version, model_name)
    reasons = fallback_reasons(features, definition)
    # rfm family: the behavioural definition's consent rule applies (no consent -> not scored, "Not
    # profiled"); its history rule does not (no purchase yet is an rfm segment of its own)
    rules = rule_table()
    rfm = rfm_assignments(
        features, reasons.isin(NOT_PROFILED_REASONS).to_numpy(), (reasons == "profiling_objection").to_numpy()
    )
    behavioural = {
        "family": "behavioural",
        "model_name": model_name,
        "model_version": version,
        "definition_version": definition_version,
        "scores": rfm,
    }
    if model is None:
        # the specific reason where there is one, else: no approved model yet
        reasons = reasons.fillna("no_champion_model")
    placed = features[reasons.isna()]
    unplaced = reasons.notna()
    # read (and validated) before anything is written: a broken playbook file fails the run, not its commit
    playbooks = playbooks or load_playbooks()
    # a generator: the model places one chunk of customers at a time, each staged as it comes
    placed_rows = (
        (
            family_rows(chunk.assign(is_fallback=False, fallback_reason=None), **behavioural)
            for chunk in assign_segments_in_chunks(model, placed)
        )
        if model is not None
        else ()
    )
    stage_assignments(
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
            (family.assign(features, rfm) for family in extra_families),
        ),
    )
    del features, placed, rfm, behavioural, placed_rows  # the write-back below runs in DuckDB: free the frames
    try:
        # the run's whole write-back, with its run record (ml.segment_scoring_runs), in one transaction
        with transaction(con):
            # the definitions the rows were placed under: the champion's (or the one in use) and the rfm rules
            write_definition(con, definition, run_id)
            write_definition(con, rules, run_id)
            for family in extra_families:
                write_definition(con, family.definition, run_id)
            rows = publish_assignments(con, run_id)
            profiles = insert_profiles(con, run_id)
            history = fold_membership_history(con, run_id)
            outbox = emit_playbooks(con, run_id, playbooks)
            sizes = con.execute(
                f"select segment_family, segment_name, count(*) from {ASSIGNMENTS_TABLE} "
                "group by all order by 1, 3 desc"
            ).fetchall()
    finally:
        drop_stage(con)
    by_family: dict[str, dict[str, int]] = {}
    for family, name, n in sizes:
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
