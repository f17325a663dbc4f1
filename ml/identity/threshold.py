"""The match threshold: which Splink pairs are one person, and which are borderline.

A fixed probability means different things on different data (the prior, the fields present and
their quality all move Splink's probabilities), so the threshold is set per run:

- **configured**: `IdentityConfig.match_threshold` when the user sets one;
- **labels**: when the project has labelled pairs (a clerical review file: two record ids and
  whether they are one person), the threshold with the best F1 on those pairs;
- **expected F-beta**: otherwise, from the model itself. Taking the scored pairs' probabilities at
  face value, linking every pair at or above t finds TP = sum(p >= t) true matches among n(p >= t)
  pairs, out of M = sum(p) matches in all scored pairs; t is where (1 + b^2) TP / (n + b^2 M) is
  highest (b = `threshold_beta`, 0.5 by default: a wrong merge costs twice a missed one). Never below
  `min_match_threshold`.

Pairs under the threshold whose match weight (log2 Bayes factor) is within `review_band` of the
threshold's are borderline: they go to the review queue, strongest first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ml.identity.config import IdentityConfig
from ml.identity.probabilistic import SCORES_TABLE

EDGES_TABLE = "identity_splink_edges"
LABELS_TABLE = "identity_labels"

LABEL_COLUMNS = ("record_id_l", "record_id_r", "is_match")


class LabelsError(ValueError):
    """The labelled-pairs file cannot be used (what is wrong and where)."""


@dataclass(frozen=True)
class Threshold:
    value: float
    source: str  # configured | labels | expected_f1 | minimum
    detail: dict = field(default_factory=dict)

    def describe(self) -> str:
        extra = ", ".join(f"{k} {v}" for k, v in self.detail.items())
        return f"match threshold {self.value:.4f} ({self.source}{': ' + extra if extra else ''})"


def load_labels(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Read a labelled-pairs CSV (`record_id_l,record_id_r,is_match`; is_match 1/0/true/false) into
    temp table `identity_labels`; returns its row count. Raises LabelsError naming the problem."""
    if not path.is_file():
        raise LabelsError(f"{path}: not a file")
    quoted = str(path).replace("'", "''")
    try:
        con.execute(
            "create or replace temp table _labels_raw as "
            f"select * from read_csv('{quoted}', header = true, all_varchar = true)"
        )
    except duckdb.Error as err:
        raise LabelsError(f"{path}: cannot be read as CSV ({err})") from err
    columns = {c.lower() for (c,) in con.execute("select column_name from (describe _labels_raw)").fetchall()}
    missing = [c for c in LABEL_COLUMNS if c not in columns]
    if missing:
        raise LabelsError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(LABEL_COLUMNS)})")
    bad = con.execute(
        """select count(*), min(rowid) + 2 from _labels_raw
           where lower(trim(is_match)) not in ('1', '0', 'true', 'false') or is_match is null
               or nullif(trim(record_id_l), '') is null or nullif(trim(record_id_r), '') is null"""
    ).fetchall()[0]
    if bad[0]:
        raise LabelsError(
            f"{path}: {bad[0]} row(s) without two record ids and an is_match of 1/0/true/false (first on line {bad[1]})"
        )
    con.execute(
        f"""create or replace temp table {LABELS_TABLE} as
            select trim(record_id_l) as record_id_l, trim(record_id_r) as record_id_r,
                   lower(trim(is_match)) in ('1', 'true') as is_match
            from _labels_raw"""
    )
    con.execute("drop table _labels_raw")
    return con.execute(f"select count(*) from {LABELS_TABLE}").fetchall()[0][0]


def _from_labels(con: duckdb.DuckDBPyConnection, config: IdentityConfig) -> Threshold | None:
    """The threshold with the best F1 on the labelled pairs that are profiles of this data (None if
    they hold no match or none maps)."""
    con.execute(
        f"""create or replace temp table _labelled_scores as
            with pairs as (
                select lab.is_match, pl.unique_id as l, pr.unique_id as r
                from {LABELS_TABLE} as lab
                inner join identity_records as rl on rl.record_id = lab.record_id_l
                inner join identity_records as rr on rr.record_id = lab.record_id_r
                inner join identity_profile_map as pl on pl.node = rl.node
                inner join identity_profile_map as pr on pr.node = rr.node
            )
            select p.is_match,
                case when p.l = p.r then 1.0 else coalesce(s.match_probability, 0.0) end as p
            from pairs as p
            left join {SCORES_TABLE} as s
                on s.unique_id_l = least(p.l, p.r) and s.unique_id_r = greatest(p.l, p.r)"""
    )
    mapped, matches = con.execute("select count(*), count(*) filter (is_match) from _labelled_scores").fetchall()[0]
    if not matches:
        return None
    row = con.execute(
        f"""with candidates as (
                select distinct p as t from _labelled_scores where p >= {config.review_floor}
            ),
            counts as (
                select t,
                    count(*) filter (is_match and p >= t) as tp,
                    count(*) filter (not is_match and p >= t) as fp,
                    count(*) filter (is_match and p < t) as fn
                from candidates, _labelled_scores group by t
            )
            select t, tp, fp, fn, 2 * tp / (2 * tp + fp + fn) as f1
            from counts order by f1 desc, t desc limit 1"""
    ).fetchall()
    con.execute("drop table _labelled_scores")
    if not row:
        return None
    t, tp, fp, fn, f1 = row[0]
    return Threshold(
        float(t),
        "labels",
        {
            "labelled_pairs": int(mapped),
            "matches": int(matches),
            "f1_on_labels": round(float(f1), 4),
            "tp": int(tp),
            "fp": int(fp),
            "fn": int(fn),
        },
    )


def _from_expected_f1(con: duckdb.DuckDBPyConnection, config: IdentityConfig) -> Threshold:
    b2 = config.threshold_beta**2
    row = con.execute(
        f"""with ranked as (
                select match_probability as p,
                    sum(match_probability) over w as tp,
                    count(*) over w as n
                from {SCORES_TABLE}
                window w as (order by match_probability desc rows between unbounded preceding and current row)
            ),
            total as (select sum(match_probability) as m from {SCORES_TABLE})
            select p, tp, n, m, (1 + {b2!r}) * tp / (n + {b2!r} * m) as f
            from ranked, total
            where p >= {config.min_match_threshold}
            order by f desc, p desc limit 1"""
    ).fetchall()
    if not row:
        return Threshold(config.min_match_threshold, "minimum", {"reason": "no pair scored at or above it"})
    p, tp, n, m, f = row[0]
    return Threshold(
        float(p),
        "expected_f1" if config.threshold_beta == 1 else f"expected_f{config.threshold_beta:g}",
        {"expected_precision": round(tp / n, 4), "expected_recall": round(tp / m, 4), "expected_f": round(f, 4)},
    )


def calibrate(con: duckdb.DuckDBPyConnection, config: IdentityConfig, has_labels: bool) -> Threshold:
    """The threshold of this run (see the module doc), from `identity_splink_scores`."""
    if config.match_threshold is not None:
        return Threshold(config.match_threshold, "configured")
    if has_labels:
        found = _from_labels(con, config)
        if found is not None:
            return found
    return _from_expected_f1(con, config)


def apply_threshold(con: duckdb.DuckDBPyConnection, threshold: Threshold) -> int:
    """`identity_splink_edges`: the scored pairs at or above the threshold; returns their count."""
    con.execute(
        f"""create or replace temp table {EDGES_TABLE} as
            select unique_id_l, unique_id_r, match_probability from {SCORES_TABLE}
            where match_probability >= {threshold.value!r}"""
    )
    return con.execute(f"select count(*) from {EDGES_TABLE}").fetchall()[0][0]


def borderline_pairs(
    con: duckdb.DuckDBPyConnection, threshold: Threshold, config: IdentityConfig
) -> list[tuple[int, int, float]]:
    """Pairs below the threshold within `review_band` match weight of it, strongest first (at most
    `max_review_pairs`)."""
    t = min(max(threshold.value, 1e-12), 1 - 1e-12)
    weight = math.log2(t / (1 - t)) - config.review_band
    low = 2**weight / (1 + 2**weight)
    rows = con.execute(
        f"""select unique_id_l, unique_id_r, match_probability from {SCORES_TABLE}
            where match_probability >= {low!r} and match_probability < {threshold.value!r}
            order by match_probability desc, unique_id_l, unique_id_r
            limit {int(config.max_review_pairs)}"""
    ).fetchall()
    return [(int(a), int(b), float(p)) for a, b, p in rows]
