"""Tunables of identity resolution, with the defaults measured in BENCHMARKS.md.

Kept free of Dagster so the library runs (and is tested) on its own; the Dagster asset exposes the
same fields as a `dg.Config`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IdentityConfig:
    """How records become customers.

    match_threshold: Splink match probability at or above which two records are the same person;
        None (default) calibrates it on every run: from labelled pairs when the project has them,
        else where the model's own expected F-beta is highest (`threshold.calibrate`), never below
        `min_match_threshold`.
    threshold_beta: the weight of recall against precision in the calibrated threshold (F-beta of
        the model's expected matches): 0.5 counts a wrong merge twice as costly as a missed one (it
        mixes two people's data and consents).
    min_match_threshold: the lowest calibrated threshold (0.5: never link a pair the model thinks
        more likely two people than one).
    review_floor: pairs scored at or above this are kept (calibration, the review queue);
        pairs between it and the threshold with a match weight within `review_band` of the
        threshold's are borderline and listed for review (at most `max_review_pairs` per run).
    sure_match_threshold / min_link_support: a Splink link below `sure_match_threshold` joins two
        groups of records only when the pairs between them average at least `min_link_support`
        (pairs not scored count 0; `clustering.corroborated_merges`): one record resembling one
        member of a family does not join the family.
    strong_match_threshold: the stricter probability kept when an oversized cluster is rebuilt.
    given_name_similarity: Jaro-Winkler at or above which two given names are compatible (typos);
        nicknames are resolved before (seed `name_nicknames`).
    surname_similarity: Jaro-Winkler at or above which a cross-system reference (ERP account ->
        CRM customer, ticket -> account) is trusted.
    max_cluster_size: a customer made of more records than this is suspicious: it is rebuilt from
        strong evidence only, and what still exceeds it is split into single records for review.
    max_identity_churn: share of the previous run's customers that may be merged or split by one
        run before the identity QA check blocks everything downstream.
    min_profiles_for_training: below this many distinct profiles Splink is not trained (EM needs
        pairs to learn from); the previous run's model scores instead, or the rules decide alone.
    min_field_fill: a field is compared and blocked on only when at least this share of profiles fills it.
    max_guard_miss / min_guard_pairs: a guard (given names, birth dates: `rules.measure_guards`) vetoes
        links only when records that are surely one person contradict on its field at most this
        often; measured on at least `min_guard_pairs` such pairs, else it stays on.
    max_pairs_per_profile / max_prediction_pairs: the pair budget of the prediction blocking rules
        (x profiles, at most `max_prediction_pairs` in all); a rule that would exceed what is left of
        it is skipped (and named in the run's notes).
    max_exhaustive_pairs: up to this many pairs of profiles (about 2,000 profiles), every pair is
        compared and no blocking rule is needed.
    min_prior_rules_recall: the least share of true matches the prior's deterministic rules are taken
        to find (the share is read from the trained model; see `probabilistic.train_model`).
    min_em_pairs_per_profile: an EM session runs only when its blocking keys give at least this many
        pairs per profile (fewer are a corner of the data, not a sample of its matches).
    em_max_pairs / u_max_pairs: sample sizes of Splink's EM and u estimation.
    seed: the random seed of Splink's sampling, so a re-run on the same data gives the same model.
    """

    match_threshold: float | None = None
    min_match_threshold: float = 0.5
    threshold_beta: float = 0.5
    review_floor: float = 0.05
    review_band: float = 2.0
    max_review_pairs: int = 2000
    sure_match_threshold: float = 0.99
    min_link_support: float = 0.3
    strong_match_threshold: float = 0.9999
    given_name_similarity: float = 0.9
    surname_similarity: float = 0.85
    max_cluster_size: int = 60
    max_identity_churn: float = 0.05
    min_profiles_for_training: int = 100
    min_field_fill: float = 0.05
    max_guard_miss: float = 0.02
    min_guard_pairs: int = 30
    max_pairs_per_profile: int = 40
    max_prediction_pairs: int = 10_000_000
    max_exhaustive_pairs: int = 2_000_000
    min_prior_rules_recall: float = 0.05
    min_em_pairs_per_profile: float = 0.1
    em_max_pairs: float = 2e6
    u_max_pairs: float = 5e6
    seed: int = 42

    def __post_init__(self) -> None:
        for name in (
            "match_threshold",
            "min_match_threshold",
            "review_floor",
            "sure_match_threshold",
            "min_link_support",
            "strong_match_threshold",
            "given_name_similarity",
            "surname_similarity",
            "min_field_fill",
            "min_prior_rules_recall",
        ):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        if self.strong_match_threshold < (self.match_threshold or self.min_match_threshold):
            raise ValueError("strong_match_threshold must be >= match_threshold and min_match_threshold")
        if self.min_em_pairs_per_profile < 0:
            raise ValueError(f"min_em_pairs_per_profile must be >= 0, got {self.min_em_pairs_per_profile!r}")
        if self.threshold_beta <= 0:
            raise ValueError(f"threshold_beta must be > 0, got {self.threshold_beta!r}")
        if self.review_floor > self.min_match_threshold:
            raise ValueError("review_floor must be <= min_match_threshold")
        for name in ("max_pairs_per_profile", "max_prediction_pairs", "max_review_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.max_cluster_size < 2:
            raise ValueError(f"max_cluster_size must be >= 2, got {self.max_cluster_size!r}")
        if not 0.0 <= self.max_identity_churn <= 1.0:
            raise ValueError(f"max_identity_churn must be in [0, 1], got {self.max_identity_churn!r}")
