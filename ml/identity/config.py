"""Tunables of identity resolution, with the defaults measured in BENCHMARKS.md.

Kept free of Dagster so the library runs (and is tested) on its own; the Dagster asset exposes the
same fields as a `dg.Config`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IdentityConfig:
    """How records become customers.

    match_threshold: Splink match probability at or above which two records are the same person.
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
    em_max_pairs / u_max_pairs: sample sizes of Splink's EM and u estimation.
    seed: the random seed of Splink's sampling, so a re-run on the same data gives the same model.
    """

    match_threshold: float = 0.99
    strong_match_threshold: float = 0.9999
    given_name_similarity: float = 0.9
    surname_similarity: float = 0.85
    max_cluster_size: int = 60
    max_identity_churn: float = 0.05
    min_profiles_for_training: int = 1000
    em_max_pairs: float = 2e6
    u_max_pairs: float = 5e6
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("match_threshold", "strong_match_threshold", "given_name_similarity", "surname_similarity"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        if self.strong_match_threshold < self.match_threshold:
            raise ValueError("strong_match_threshold must be >= match_threshold")
        if self.max_cluster_size < 2:
            raise ValueError(f"max_cluster_size must be >= 2, got {self.max_cluster_size!r}")
        if not 0.0 <= self.max_identity_churn <= 1.0:
            raise ValueError(f"max_identity_churn must be in [0, 1], got {self.max_identity_churn!r}")
