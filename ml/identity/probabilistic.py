"""Probabilistic record linkage with Splink (DuckDB backend), built from the fields a delivery has.

Splink scores pairs of *profiles* (distinct combinations of the compared fields; see
`linkage.build_profiles`): twenty tickets written with the same name, e-mail and phone are one
profile, so they are compared once. The model is a Fellegi-Sunter model: u probabilities from random
sampling, m probabilities trained by expectation maximisation, term-frequency adjustments on names,
postal codes and places (a shared "Smith" says less than a shared "Zimmermann").

What is compared, how pairs are blocked and how the model is trained follow the data (`plan_model`):
a field enters the model when enough profiles fill it (`min_field_fill`), a blocking rule when all its
fields do and it stays within the pair budget; EM sessions are chosen so every comparison is trained
in one. A CRM export with names, birth dates and postcodes but no e-mail or phone is linked from what
it carries. The plan, with why anything was left out, is returned for the run's metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.comparison_level import _default_m_values
from splink.internals.exceptions import SplinkException
from splink.internals.splink_dataframe import SplinkDataFrame

from ml.identity.config import IdentityConfig
from ml.identity.rules import given_names_compatible

# The profile table Splink reads (created by linkage.build_profiles in the same connection).
PROFILES_TABLE = "identity_profiles"
# The pairs Splink scored at or above the review floor (created by `link_profiles`).
SCORES_TABLE = "identity_splink_scores"

# Columns of `PROFILES_TABLE` that Splink may compare (linkage.build_profiles builds them).
COMPARED_COLUMNS = (
    "given_name_key",
    "first_name_key",
    "last_name_key",
    "email_key",
    "phone_nsn",
    "postal_code_key",
    "street_key",
    "city_key",
    "birth_date",
    "birth_place_key",
    "gender_key",
    "occupation_key",
    "company_key",
)


# Given name and surname swapped (typos allowed), on profiles whose given names do not agree: one fact,
# so the given-name comparison weighs it and the surname comparison counts it as missing (a null level)
# rather than as a second, independent agreement.
_NAMES_CROSSED = (
    "left(given_name_key_l, 1) = left(last_name_key_r, 1) and left(last_name_key_l, 1) = left(given_name_key_r, 1)"
    " and jaro_winkler_similarity(given_name_key_l, last_name_key_r) >= 0.92"
    " and jaro_winkler_similarity(last_name_key_l, given_name_key_r) >= 0.92"
    " and jaro_winkler_similarity(given_name_key_l, given_name_key_r) < 0.92"
)


def _given_name() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="given_name_key",
        comparison_levels=[
            cll.NullLevel("given_name_key"),
            cll.ExactMatchLevel("given_name_key").configure(tf_adjustment_column="given_name_key"),
            cll.CustomLevel(_NAMES_CROSSED, label_for_charts="Given name and surname swapped"),
            cll.JaroWinklerLevel("given_name_key", 0.92),
            cll.JaroWinklerLevel("given_name_key", 0.80),
            cll.ElseLevel(),
        ],
        comparison_description="Given name: exact, swapped with the surname, then similarity",
    )


def _last_name() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="last_name_key",
        comparison_levels=[
            cll.NullLevel("last_name_key"),
            cll.CustomLevel(_NAMES_CROSSED, label_for_charts="Swapped with the given name (weighed there)").configure(
                is_null_level=True
            ),
            cll.ExactMatchLevel("last_name_key").configure(tf_adjustment_column="last_name_key"),
            cll.JaroWinklerLevel("last_name_key", 0.92),
            cll.JaroWinklerLevel("last_name_key", 0.80),
            cll.CustomLevel(
                "last_name_key_l = given_name_key_r or given_name_key_l = last_name_key_r",
                label_for_charts="Surname is the other's given name",
            ),
            cll.ElseLevel(),
        ],
        comparison_description="Surname: exact, then similarity, then the other's given name",
    )


def _email() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.NullLevel("email_key"),
            cll.ExactMatchLevel("email_key"),
            cll.CustomLevel("mailbox_name_l = mailbox_name_r", label_for_charts="Same mailbox name, other provider"),
            cll.JaroWinklerLevel("email_key", 0.88),
            cll.ElseLevel(),
        ],
        comparison_description="E-mail (mailbox form), then mailbox name, then similarity",
    )


def _postal_code() -> cl.CustomComparison:
    """Exact (term-frequency adjusted), one typo, then the same area (all but the last two characters:
    a UK outward code, the first digits of a German or French code)."""
    return cl.CustomComparison(
        output_column_name="postal_code",
        comparison_levels=[
            cll.NullLevel("postal_code_key"),
            cll.ExactMatchLevel("postal_code_key").configure(tf_adjustment_column="postal_code_key"),
            cll.DamerauLevenshteinLevel("postal_code_key", 1),
            cll.CustomLevel("postal_area_l = postal_area_r", label_for_charts="Same area"),
            cll.ElseLevel(),
        ],
        comparison_description="Postal code, then one typo, then the same area",
    )


def _street() -> cl.CustomComparison:
    """Street and house number: exact, a typo in the street name at the same number, then the same
    street at another number (another address on the same street: neighbours, not the same home).
    Street name and number are split once per profile (`linkage.build_profiles`), not per pair."""
    return cl.CustomComparison(
        output_column_name="street",
        comparison_levels=[
            cll.NullLevel("street_key"),
            cll.ExactMatchLevel("street_key"),
            cll.CustomLevel(
                "house_number_l = house_number_r and jaro_winkler_similarity(street_name_l, street_name_r) >= 0.9",
                label_for_charts="Same number, street name similar",
            ),
            cll.CustomLevel("street_name_l = street_name_r", label_for_charts="Same street, other number"),
            cll.ElseLevel(),
        ],
        comparison_description="Street and house number: exact, a typo in the name, same street elsewhere",
    )


# Typed characters in two ISO dates (always ten characters): `hamming` counts substituted ones fifty times
# faster than an edit distance; the edit distance runs only to tell one transposition (two
# substitutions side by side) from two typos.
_DATE_TYPOS = "hamming(birth_date_text_l, birth_date_text_r)"
_ONE_DATE_TYPO = (
    f"{_DATE_TYPOS} <= 1 or ({_DATE_TYPOS} = 2 and damerau_levenshtein(birth_date_text_l, birth_date_text_r) = 1)"
)


def _birth_date() -> cl.CustomComparison:
    """Birth date: exact, one typed character, within a month, two typed characters, then within a
    year, ten years (Splink's date-of-birth levels, on the ISO text kept per profile rather than
    formatting the dates for every pair)."""
    return cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.CustomLevel(_ONE_DATE_TYPO, label_for_charts="One typed character"),
            cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=False, threshold=1, metric="month"),
            cll.CustomLevel(f"{_DATE_TYPOS} <= 2", label_for_charts="Two typed characters"),
            cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=False, threshold=1, metric="year"),
            cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=False, threshold=10, metric="year"),
            cll.ElseLevel(),
        ],
        comparison_description="Birth date: exact, one typo, within a month, two typos, within a year, ten years",
    )


def _place(column: str, description: str) -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name=column.removesuffix("_key"),
        comparison_levels=[
            cll.NullLevel(column),
            cll.ExactMatchLevel(column).configure(tf_adjustment_column=column),
            cll.JaroWinklerLevel(column, 0.9),
            cll.ElseLevel(),
        ],
        comparison_description=description,
    )


def _exact(column: str, tf: bool = False) -> cl.ExactMatch:
    comparison = cl.ExactMatch(column)
    return comparison.configure(term_frequency_adjustments=True) if tf else comparison


@dataclass(frozen=True)
class Evidence:
    """One comparison the model may make: what it needs filled and how it compares."""

    name: str
    columns: tuple[str, ...]  # must be filled often enough; the first is the one its exact level tests
    build: Callable[[], Any]


# In order of the model's comparisons. The first level of each (after null) is an exact match on
# its first column, which is how the prior's deterministic rules are judged (`_rule_recall`).
EVIDENCE = (
    Evidence("given_name", ("given_name_key",), _given_name),
    Evidence("last_name", ("last_name_key",), _last_name),
    Evidence("email", ("email_key",), _email),
    Evidence("phone", ("phone_nsn",), lambda: _exact("phone_nsn")),
    Evidence("birth_date", ("birth_date",), _birth_date),
    Evidence("postal_code", ("postal_code_key",), _postal_code),
    Evidence("street", ("street_key",), _street),
    Evidence("city", ("city_key",), lambda: _place("city_key", "City")),
    Evidence("birth_place", ("birth_place_key",), lambda: _place("birth_place_key", "Place of birth")),
    Evidence("gender", ("gender_key",), lambda: _exact("gender_key")),
    Evidence("occupation", ("occupation_key",), lambda: _exact("occupation_key", tf=True)),
    Evidence("company", ("company_key",), lambda: _place("company_key", "Company")),
)


@dataclass(frozen=True)
class Blocking:
    """A candidate blocking rule: pairs equal on every expression are compared. `fields` are the
    profile columns it needs filled; `condition`, SQL on `l` and `r`, narrows the pairs further."""

    expressions: tuple[str, ...]
    fields: tuple[str, ...]
    condition: str | None = None
    condition_reads: tuple[str, ...] = ()  # the profile columns `condition` reads

    @property
    def reads(self) -> set[str]:
        """Every profile column the rule reads: Splink does not train a comparison on a column its EM
        blocking rule reads (agreement there is forced by the rule, not learnt from the pairs)."""
        return set(self.fields) | set(self.condition_reads)

    def rule(self):
        if not self.expressions:
            return "1 = 1"
        if self.condition is None:
            return block_on(*self.expressions)
        equal = " and ".join(f"l.{e} = r.{e}" for e in self.expressions)  # plain columns only
        return f"{equal} and {self.condition}"

    @property
    def label(self) -> str:
        return " & ".join(self.expressions) or "every pair"


def _b(*expressions: str, fields: tuple[str, ...] | None = None) -> Blocking:
    return Blocking(expressions, fields or expressions)


# Small data is compared exhaustively (`max_exhaustive_pairs`): no blocking rule can miss a pair.
EVERY_PAIR = Blocking((), ())

# Candidate prediction rules, most selective first; `plan_model` keeps those whose fields are filled
# and whose pairs fit the budget. Substring and unordered-name rules find records with typos or
# swapped names that no exact key joins.
BLOCKING_CANDIDATES = (
    _b("email_key"),
    _b("phone_nsn"),
    _b("last_name_key", "postal_code_key"),
    _b("street_key", "postal_code_key"),
    _b("last_name_key", "birth_date"),
    _b("given_name_key", "birth_date"),
    _b("given_name_key", "postal_code_key"),
    _b("birth_date", "postal_code_key"),
    _b("birth_date", "birth_place_key"),
    _b("last_name_key", "birth_place_key"),
    _b("last_name_key", "company_key"),
    _b(
        "least(given_name_key, last_name_key)",
        "greatest(given_name_key, last_name_key)",
        fields=("given_name_key", "last_name_key"),
    ),
    _b("substr(given_name_key, 1, 3)", "substr(last_name_key, 1, 4)", fields=("given_name_key", "last_name_key")),
    _b("substr(postal_code_key, 1, 3)", "birth_date", fields=("postal_code_key", "birth_date")),
    _b(
        "substr(given_name_key, 1, 2)",
        "substr(last_name_key, 1, 2)",
        "year(birth_date)",
        fields=("given_name_key", "last_name_key", "birth_date"),
    ),
    _b("split_part(email_key, '@', 1)", fields=("email_key",)),
    _b("given_name_key", "strftime(birth_date, '%Y-%m')", fields=("given_name_key", "birth_date")),
    _b("last_name_key", "strftime(birth_date, '%Y-%m')", fields=("last_name_key", "birth_date")),
    _b("birth_date", "city_key"),
    _b("given_name_key", "city_key"),
    _b("last_name_key", "city_key"),
    _b("given_name_key", "birth_place_key"),
    _b("birth_date"),
)

# EM sessions in order of preference; each trains the m probabilities of every comparison that does
# not use its fields. Sessions are added until every comparison is trained.
# Selective keys first: EM learns "the same person" best from pairs that mostly are one person (in
# data where many people share a name, pairs blocked on the name alone teach it "the same family").
# A mailbox or a landline is shared by a household: the pairs EM learns "the same person" from on them
# must also have compatible given names, or EM learns "the same household" (matches with other birth
# dates and other e-mails) and the model then links namesakes.
# The first session that trains the names then is one without them, as selective as it gets (two
# records with one birth date and one postal code are mostly one person).
_SAME_PERSON = given_names_compatible("l", "r", IdentityConfig())
_NAME_COLUMNS = ("given_name_key", "first_name_key", "last_name_key")

EM_CANDIDATES = (
    Blocking(("email_key",), ("email_key",), _SAME_PERSON, _NAME_COLUMNS),
    _b("birth_date", "postal_code_key"),
    Blocking(("phone_nsn",), ("phone_nsn",), _SAME_PERSON, _NAME_COLUMNS),
    _b("last_name_key", "postal_code_key"),
    _b("birth_date"),
    _b("given_name_key", "last_name_key"),
    _b("postal_code_key"),
    _b("last_name_key"),
)

# Deterministic rules for the prior (the share of pairs that match): a pair equal on all of these is
# almost surely one person.
PRIOR_CANDIDATES = (
    _b("email_key", "given_name_key"),
    _b("phone_nsn", "last_name_key", "given_name_key"),
    _b("given_name_key", "last_name_key", "birth_date"),
    _b("given_name_key", "last_name_key", "postal_code_key"),
)


@dataclass
class ModelPlan:
    """What the model compares and blocks on for this data, with why the rest was left out."""

    profiles: int
    fill: dict[str, float]
    evidence: list[str] = field(default_factory=list)
    blocking: list[Blocking] = field(default_factory=list)
    blocking_pairs: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def settings(self) -> SettingsCreator:
        comparisons = [e.build() for e in EVIDENCE if e.name in self.evidence]
        return SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="unique_id",
            probability_two_random_records_match=1e-5,
            comparisons=comparisons,
            blocking_rules_to_generate_predictions=[b.rule() for b in self.blocking],
            retain_intermediate_calculation_columns=False,
            retain_matching_columns=False,
            additional_columns_to_retain=[],
        )

    def describe(self) -> dict[str, Any]:
        return {
            "profiles": self.profiles,
            "comparisons": self.evidence,
            "blocking_rules": {b.label: self.blocking_pairs[b.label] for b in self.blocking},
            "skipped": self.skipped,
            "field_fill": {k: round(v, 3) for k, v in self.fill.items()},
        }


def _usable(plan: ModelPlan, columns: tuple[str, ...], config: IdentityConfig) -> bool:
    return all(plan.fill.get(c, 0.0) >= config.min_field_fill for c in columns)


def block_pairs(con: duckdb.DuckDBPyConnection, blocking: Blocking) -> int:
    """Pairs of profiles a rule would compare (equal on every expression, none null): sum of n(n-1)/2."""
    keys = ", ".join(blocking.expressions)
    filled = " and ".join(f"({e}) is not null" for e in blocking.expressions)
    return int(
        con.execute(
            f"""select coalesce(sum(n * (n - 1) // 2), 0) from (
                    select count(*) as n from {PROFILES_TABLE} where {filled} group by {keys})"""
        ).fetchall()[0][0]
    )


def plan_model(con: duckdb.DuckDBPyConnection, config: IdentityConfig) -> ModelPlan:
    """Choose comparisons and prediction blocking rules from the profiles' fill rates and the pair budget."""
    fills = ", ".join(f"count({c}) / greatest(count(*), 1)" for c in COMPARED_COLUMNS)
    row = con.execute(f"select count(*), {fills} from {PROFILES_TABLE}").fetchall()[0]
    plan = ModelPlan(int(row[0]), dict(zip(COMPARED_COLUMNS, (float(v) for v in row[1:]), strict=True)))
    for evidence in EVIDENCE:
        fill = min(plan.fill.get(c, 0.0) for c in evidence.columns)
        if fill < config.min_field_fill:
            if fill > 0:  # a field nobody fills is not worth a line
                plan.skipped.append(
                    f"comparison {evidence.name}: filled in {fill:.1%} of profiles "
                    f"(< min_field_fill {config.min_field_fill:.0%})"
                )
            continue
        plan.evidence.append(evidence.name)
    all_pairs = plan.profiles * (plan.profiles - 1) // 2
    if all_pairs <= config.max_exhaustive_pairs:
        plan.blocking.append(EVERY_PAIR)
        plan.blocking_pairs[EVERY_PAIR.label] = all_pairs
        return plan
    budget = min(config.max_pairs_per_profile * max(plan.profiles, 1), config.max_prediction_pairs)
    total = 0
    for blocking in BLOCKING_CANDIDATES:
        if not _usable(plan, blocking.fields, config):
            continue
        pairs = block_pairs(con, blocking)
        if pairs > budget - total:
            plan.skipped.append(
                f"blocking {blocking.label}: {pairs:,} pairs would exceed the budget of {budget:,} ({total:,} used)"
            )
            continue
        plan.blocking.append(blocking)
        plan.blocking_pairs[blocking.label] = pairs
        total += pairs
    return plan


@dataclass
class ProbabilisticResult:
    """What the Splink stage leaves behind besides table `SCORES_TABLE`: the model (empty when none
    scored), the plan and notes on the path taken."""

    model: dict[str, Any]
    plan: dict[str, Any] = field(default_factory=dict)
    pairs_scored: int = 0
    notes: list[str] = field(default_factory=list)


def _rule_recall(model: dict[str, Any], plan: ModelPlan, rule: Blocking) -> float | None:
    """The share of true matches a deterministic rule finds, from the trained model: the product of
    the m probabilities of exact agreement on each of its fields (None if one is not compared)."""
    first_level_m = {}
    for name, comparison in zip(plan.evidence, model.get("comparisons", []), strict=False):
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        column = next(e.columns[0] for e in EVIDENCE if e.name == name)
        if levels and levels[0].get("m_probability") is not None:
            first_level_m[column] = float(levels[0]["m_probability"])
    recall = 1.0
    for column in rule.fields:
        if column not in first_level_m:
            return None
        recall *= first_level_m[column]
    return recall


def unseen_levels_without_credit(model: dict[str, Any]) -> dict[str, int]:
    """Cap, in place, the m probability of every level EM never observed among matches at its u
    probability (no evidence for a match); returns how many levels were capped, by comparison.

    Splink leaves such a level untrained and scores it with a default m (0.05 shared among the levels
    after the first), so its weight comes from its rarity among non-matches alone: on 2,000 generated
    persons the never-seen "given name and surname swapped" level weighed +15 bits and near-identical
    e-mails of namesakes +4. A level no training pair showed is no evidence for a match; it stays
    evidence against one where the default is below u (the "all other" levels)."""
    capped: dict[str, int] = {}
    for comparison in model.get("comparisons", []):
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        if len(levels) < 2 or all(lv.get("m_probability") is None for lv in levels):
            continue  # untrained as a whole: the notes already say so
        defaults = _default_m_values(len(levels))[::-1]  # Splink lists them from the last level
        for level, default_m in zip(levels, defaults, strict=True):
            u = level.get("u_probability")
            if level.get("m_probability") is None and u is not None:
                level["m_probability"] = min(default_m, u)
                name = comparison["output_column_name"]
                capped[name] = capped.get(name, 0) + 1
    return capped


def train_model(
    con: duckdb.DuckDBPyConnection, df: SplinkDataFrame, plan: ModelPlan, config: IdentityConfig
) -> tuple[Linker, list[str]]:
    """A linker on `df` with u (random sampling), m (EM sessions chosen so every comparison is trained
    once) and the prior estimated; and notes on what could not be estimated. Raises SplinkException
    when no EM session trained (the data gives too few pairs to learn from).

    The prior (the chance that two random profiles are one person) is counted from the pairs that
    deterministic rules find, divided by the share of matches those rules find. That share is read
    from the trained m probabilities (exact agreement on every field of a rule), so it follows the
    data: in a clean CRM most duplicates agree exactly on name and birth date, in a typed-by-hand one
    a minority does.

    A session with fewer pairs than `min_em_pairs_per_profile` x profiles sees a corner of the data: on
    2,000 generated persons the 137 pairs of one birth date and postal code were all CRM re-entries,
    and taught that 30% of matches type their given names differently (a similar given name then
    weighed more than an identical one)."""
    linker = Linker(df, plan.settings(), log_level=None)
    train = linker.training
    notes: list[str] = []
    train.estimate_u_using_random_sampling(max_pairs=config.u_max_pairs, seed=config.seed)
    evidence = {e.name: e for e in EVIDENCE}
    untrained = {name: set(evidence[name].columns) for name in plan.evidence}
    sessions = 0
    for blocking in EM_CANDIDATES:
        if not untrained:
            break
        if not _usable(plan, blocking.fields, config):
            continue
        trains = [name for name, cols in untrained.items() if not cols & blocking.reads]
        if not trains:
            continue
        pairs = plan.blocking_pairs.get(blocking.label)
        pairs = block_pairs(con, blocking) if pairs is None else pairs
        if pairs < config.min_em_pairs_per_profile * plan.profiles:
            notes.append(
                f"EM on {blocking.label} skipped: {pairs:,} pairs "
                f"(< min_em_pairs_per_profile {config.min_em_pairs_per_profile} x {plan.profiles:,} profiles)"
            )
            continue
        try:
            train.estimate_parameters_using_expectation_maximisation(blocking.rule(), max_pairs=config.em_max_pairs)
        except (SplinkException, ValueError, ZeroDivisionError) as err:  # degenerate pairs under this rule
            notes.append(f"EM on {blocking.label} skipped: {err}")
            continue
        sessions += 1
        for name in trains:
            untrained.pop(name)
    if not sessions:
        raise SplinkException("no EM session could be trained: " + "; ".join(notes))
    if untrained:
        notes.append(f"m of {', '.join(sorted(untrained))} not trained (no EM session left them free)")
    model = linker.misc.save_model_to_json()
    capped = unseen_levels_without_credit(model)
    if capped:
        levels = ", ".join(f"{name} {n}" for name, n in capped.items())
        notes.append(f"levels no training match showed, weighed as no evidence for a match: {levels}")
        linker = Linker(df, model, log_level=None)
        train = linker.training
    rules = [(b, _rule_recall(model, plan, b)) for b in PRIOR_CANDIDATES if _usable(plan, b.fields, config)]
    rules = [(b, r) for b, r in rules if r]
    if not rules:
        notes.append("prior kept: no deterministic rule has its fields compared")
        return linker, notes
    missed = 1.0
    for _, recall in rules:
        missed *= 1.0 - recall
    recall = min(max(1.0 - missed, config.min_prior_rules_recall), 1.0)
    try:
        train.estimate_probability_two_random_records_match([b.rule() for b, _ in rules], recall=recall)
        notes.append(f"prior from {', '.join(b.label for b, _ in rules)} (finding ~{recall:.0%} of matches)")
    except SplinkException as err:  # no deterministic matches at all: keep the default prior
        notes.append(f"prior kept: {err}")
    return linker, notes


def link_profiles(
    con: duckdb.DuckDBPyConnection, config: IdentityConfig, previous_model: dict[str, Any] | None = None
) -> ProbabilisticResult:
    """Score the profiles in `PROFILES_TABLE`; write every pair scored at or above
    `config.review_floor` to `SCORES_TABLE(unique_id_l, unique_id_r, match_probability)` (the
    threshold, `threshold.py`, then picks the links among them).

    The model is trained on this data when there is enough of it (`min_profiles_for_training`);
    otherwise, or when training fails, the previous run's model is reused; without one, no pairs
    are scored and the deterministic rules alone decide. Notes say which path was taken.
    """
    logging.getLogger("splink").setLevel(logging.ERROR)
    profiles = con.execute(f"select count(*) from {PROFILES_TABLE}").fetchall()[0][0]
    if profiles < 2:
        _empty_scores(con)
        return ProbabilisticResult({}, notes=["fewer than two profiles: nothing to score"])
    plan = plan_model(con, config)
    result = ProbabilisticResult({}, plan.describe())
    if not plan.evidence or not plan.blocking:
        _empty_scores(con)
        result.notes.append("no field is filled often enough to compare or block on: deterministic rules only")
        return result
    db_api = DuckDBAPI(connection=con)
    df = db_api.register(PROFILES_TABLE, table_name="identity_profiles_input")
    linker = None
    if profiles >= config.min_profiles_for_training:
        try:
            linker, notes = train_model(con, df, plan, config)
            result.notes += notes
        except (SplinkException, ValueError, ZeroDivisionError) as err:
            result.notes.append(f"training failed: {err}")
    else:
        result.notes.append(
            f"{profiles} profiles < min_profiles_for_training={config.min_profiles_for_training}: not trained"
        )
    if linker is None and previous_model:
        linker = Linker(df, previous_model, log_level=None)
        result.notes.append("scored with the previous run's model")
    if linker is None:
        _empty_scores(con)
        result.notes.append("no model: deterministic rules only")
        return result
    predictions = linker.inference.predict(threshold_match_probability=config.review_floor)
    con.execute(
        f"""create or replace temp table {SCORES_TABLE} as
            select unique_id_l, unique_id_r, match_probability
            from {predictions.physical_name}"""
    )
    predictions.drop_table_from_database_and_remove_from_cache()
    result.model = linker.misc.save_model_to_json()
    result.pairs_scored = con.execute(f"select count(*) from {SCORES_TABLE}").fetchall()[0][0]
    drop_splink_tables(con)
    return result


def drop_splink_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Drop what Splink cached in the connection (the profiles with term frequencies, samples, blocked
    pairs): clustering needs the memory, and at a million persons it ran out of it with them kept."""
    for schema, name, kind in con.execute(
        """select schema_name, table_name, 'table' from duckdb_tables()
           where database_name = current_database() and starts_with(table_name, '__splink__')
           union all
           select schema_name, view_name, 'view' from duckdb_views()
           where database_name = current_database() and starts_with(view_name, '__splink__')"""
    ).fetchall():
        con.execute(f'drop {kind} if exists "{schema}"."{name}"')


def _empty_scores(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"create or replace temp table {SCORES_TABLE} "
        "(unique_id_l bigint, unique_id_r bigint, match_probability double)"
    )
