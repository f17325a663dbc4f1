"""Probabilistic record linkage with Splink (DuckDB backend).

Splink scores pairs of *profiles* (distinct combinations of the compared fields; see
`linkage.build_profiles`): twenty tickets written with the same name, e-mail and phone are one
profile, so they are compared once. The model is a Fellegi-Sunter model whose u probabilities come
from random sampling, whose m probabilities are trained by expectation maximisation on two
independent blocking rules, with term-frequency adjustments on names and postal codes (a shared
"Smith" says less than a shared "Zimmermann").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import duckdb
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.exceptions import SplinkException

from ml.identity.config import IdentityConfig

# The profile table Splink reads (created by linkage.build_profiles in the same connection).
PROFILES_TABLE = "identity_profiles"

# Pairs are only scored when they share one of these (an OR of rules; Splink removes duplicates).
# Each is selective at any scale: a rule like (given name, surname, city) would pair ~100 records
# per block at 1M people (a quadratic 100M pairs) and finds nothing the address rules miss.
PREDICTION_BLOCKING_RULES = (
    block_on("email_key"),
    block_on("phone_nsn"),
    block_on("last_name_key", "postal_code_key"),
    block_on("street_key", "postal_code_key"),
    block_on("last_name_key", "birth_date"),
)


def _name_comparison(name: str, exact: str, fuzzy: str, description: str) -> cl.CustomComparison:
    """Exact key (term-frequency adjusted: a shared rare name says more), then two similarity bands."""
    return cl.CustomComparison(
        output_column_name=name,
        comparison_levels=[
            cll.NullLevel(exact),
            cll.ExactMatchLevel(exact).configure(tf_adjustment_column=exact),
            cll.JaroWinklerLevel(fuzzy, 0.92),
            cll.JaroWinklerLevel(fuzzy, 0.80),
            cll.ElseLevel(),
        ],
        comparison_description=description,
    )


def splink_settings() -> SettingsCreator:
    """The linkage model's structure: what is compared and at which levels."""
    given_name = _name_comparison(
        "given_name",
        exact="given_name_key",
        fuzzy="first_name_key",
        description="Given name (nicknames resolved), then spelling similarity",
    )
    last_name = _name_comparison(
        "last_name", exact="last_name_key", fuzzy="last_name_key", description="Surname, then spelling similarity"
    )
    email = cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.NullLevel("email_key"),
            cll.ExactMatchLevel("email_key"),
            cll.CustomLevel(
                "regexp_replace(split_part(email_key_l, '@', 1), '[._-]', '', 'g') = "
                "regexp_replace(split_part(email_key_r, '@', 1), '[._-]', '', 'g')",
                label_for_charts="Same mailbox name, other provider",
            ),
            cll.JaroWinklerLevel("email_key", 0.88),
            cll.ElseLevel(),
        ],
        comparison_description="E-mail (mailbox form), then mailbox name, then similarity",
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=1e-5,
        comparisons=[
            given_name,
            last_name,
            email,
            cl.ExactMatch("phone_nsn"),
            cl.ExactMatch("postal_code_key").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("street_key", [0.95, 0.85]),
            cl.ExactMatch("birth_date"),
        ],
        blocking_rules_to_generate_predictions=list(PREDICTION_BLOCKING_RULES),
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=[],
    )


@dataclass
class ProbabilisticResult:
    """What the Splink stage leaves behind besides table `identity_splink_edges`: the model (empty
    when none scored) and notes on the path taken."""

    model: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def train_model(linker: Linker, config: IdentityConfig) -> list[str]:
    """Estimate the prior, u (random sampling) and m (EM on two blockings) in place.

    Returns notes on what could not be estimated; raises SplinkException when no EM session
    trained (the data gives too few pairs to learn from)."""
    train = linker.training
    notes: list[str] = []
    try:
        train.estimate_probability_two_random_records_match(
            [block_on("email_key", "given_name_key"), block_on("phone_nsn", "last_name_key", "given_name_key")],
            recall=0.8,
        )
    except SplinkException as err:  # no deterministic matches at all: keep the prior
        notes.append(f"prior kept: {err}")
    train.estimate_u_using_random_sampling(max_pairs=config.u_max_pairs, seed=config.seed)
    # Two sessions with different blocking keys, so every comparison gets m estimated in one.
    trained = 0
    for rule in (block_on("email_key"), block_on("last_name_key", "postal_code_key")):
        try:
            train.estimate_parameters_using_expectation_maximisation(rule, max_pairs=config.em_max_pairs)
            trained += 1
        except (SplinkException, ValueError, ZeroDivisionError) as err:  # degenerate pairs under this rule
            notes.append(f"EM on {rule.get_blocking_rule('duckdb').blocking_rule_sql} skipped: {err}")
    if not trained:
        raise SplinkException("no EM session could be trained: " + "; ".join(notes))
    return notes


def link_profiles(
    con: duckdb.DuckDBPyConnection, config: IdentityConfig, previous_model: dict[str, Any] | None = None
) -> ProbabilisticResult:
    """Score the profiles in `PROFILES_TABLE` and write pairs at or above the match threshold to
    `identity_splink_edges(unique_id_l, unique_id_r, match_probability)`.

    The model is trained on this data when there is enough of it (`min_profiles_for_training`);
    otherwise, or when training fails, the previous run's model is reused; without one, no pairs
    are scored and the deterministic rules alone decide. Notes say which path was taken.
    """
    logging.getLogger("splink").setLevel(logging.ERROR)
    profiles = con.execute(f"select count(*) from {PROFILES_TABLE}").fetchall()[0][0]
    if profiles < 2:
        _empty_edges(con)
        return ProbabilisticResult({}, ["fewer than two profiles: nothing to score"])
    db_api = DuckDBAPI(connection=con)
    df = db_api.register(PROFILES_TABLE, table_name="identity_profiles_input")
    notes: list[str] = []
    linker = None
    if profiles >= config.min_profiles_for_training:
        linker = Linker(df, splink_settings(), log_level=None)
        try:
            notes += train_model(linker, config)
        except (SplinkException, ValueError, ZeroDivisionError) as err:
            notes.append(f"training failed: {err}")
            linker = None
    else:
        notes.append(f"{profiles} profiles < min_profiles_for_training={config.min_profiles_for_training}: not trained")
    if linker is None and previous_model:
        linker = Linker(df, previous_model, log_level=None)
        notes.append("scored with the previous run's model")
    if linker is None:
        _empty_edges(con)
        notes.append("no model: deterministic rules only")
        return ProbabilisticResult({}, notes)
    predictions = linker.inference.predict(threshold_match_probability=config.match_threshold)
    con.execute(
        f"""create or replace temp table identity_splink_edges as
            select unique_id_l, unique_id_r, match_probability
            from {predictions.physical_name}"""
    )
    model = linker.misc.save_model_to_json()
    predictions.drop_table_from_database_and_remove_from_cache()
    return ProbabilisticResult(model, notes)


def _empty_edges(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace temp table identity_splink_edges "
        "(unique_id_l bigint, unique_id_r bigint, match_probability double)"
    )
