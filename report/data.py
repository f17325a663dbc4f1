"""Read one published serving version into plain Python values for the segment report.

Only the version folder's `bi.duckdb` is opened, read-only (never the warehouse: a run may be writing it,
and the published copy is what BI and the business see). Every aggregation is one DuckDB query; Python
receives a few hundred small rows at most and never a customer id.

A table can be absent (an older project, a project without predictions or playbooks) or empty (the
first delivery has no transitions): an absent table loads as `None`, an empty one as `[]`, and the page
says "none yet" for both. A column an older project does not have is read as NULL instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

# The families in the order the design lists them; any other family follows, alphabetically.
FAMILY_ORDER = ("rfm", "behavioural", "lifecycle", "predictive")
TOP_MOVES = 10  # largest moves listed per family
RULES_PER_SEGMENT = 3  # reasons (surrogate leaves) listed per segment where the definition has no rule table
DEFAULT_HIGH_CHURN = 0.6  # churn probability from which a customer is "high risk" when no definition says

Row = dict[str, Any]


class ReportError(Exception):
    """A version folder the report cannot be built from (no bi.duckdb, no segments), with the reason."""


@dataclass(frozen=True)
class Publication:
    """Which published copy the report shows."""

    version: str
    run_id: str | None
    published_at: datetime | None
    customers: int


@dataclass(frozen=True)
class Predictions:
    """The distribution of `segments.customer_predictions` (None where the table is absent)."""

    summary: Row
    not_predicted: list[Row]
    churn_histogram: list[Row]  # bin 0..9 of churn probability, customers
    risk_tiers: list[Row]
    value_tiers: list[Row]
    risk_by_value: list[Row]  # risk tier x value tier, customers
    high_churn: float
    medium_churn: float


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, already aggregated. `None`: the table is not in this publication."""

    publication: Publication
    families: list[str]
    segments: list[Row]  # current sizes: family, key, name, customers, share, is_fallback, versions
    history: list[Row] | None  # family, ts, key, customers (members valid at each run / change)
    profiles: list[Row] | None  # the profiles of the run of the assignments, per family
    definitions: dict[str, Row]  # family -> name, version, description, content (parsed JSON)
    reasons: list[Row]  # family, key, reason, customers, reasons, total
    leaves: list[Row]  # learnt families: family, key, rule, customers, leaf_total, rules, covered
    traits: dict[tuple[str, str], str]  # (family, key) -> the cluster's short trait text
    transition_runs: dict[str, Row] | None  # family -> run_id, scored_at, previous_run_id
    transitions: list[Row] | None  # cells of the latest run's matrix per family
    top_moves: list[Row] | None
    alerts: list[Row] | None
    actions: list[Row] | None
    lift: list[Row] | None
    predictions: Predictions | None
    names: dict[tuple[str, str], str] = field(default_factory=dict)  # (family, key) -> segment name


class _Source:
    """A read-only connection with the catalog of what this publication holds."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.columns: dict[str, set[str]] = {}
        for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns"
        ).fetchall():
            self.columns.setdefault(f"{schema}.{table}", set()).add(column)

    def has(self, table: str, *columns: str) -> bool:
        return table in self.columns and set(columns) <= self.columns[table]

    def col(self, table: str, column: str, default: str = "null") -> str:
        """`column`, or `default as column` where this publication's table lacks it."""
        return column if column in self.columns.get(table, ()) else f"{default} as {column}"

    def cols(self, table: str, columns: Sequence[str]) -> str:
        return ", ".join(self.col(table, c) for c in columns)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self.con.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def family_sort_key(family: str) -> tuple[int, str]:
    return (FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER), family)


def load_report_data(version_dir: Path) -> ReportData:
    """Read the published version in `version_dir` (its `bi.duckdb`, read-only) into a ReportData."""
    path = Path(version_dir) / "bi.duckdb"
    if not path.is_file():
        raise ReportError(f"no bi.duckdb in {version_dir}: not a published serving version")
    with duckdb.connect(str(path), read_only=True) as con:
        src = _Source(con)
        if not src.has("segments.customer_segments", "segment_family", "segment_key", "segment_name"):
            raise ReportError(f"{path} has no segments.customer_segments: nothing to report")
        segments = _segments(src)
        families = sorted({r["family"] for r in segments}, key=family_sort_key)
        publication = _publication(src, Path(version_dir))
        definitions = _definitions(src, segments)
        return ReportData(
            publication=publication,
            families=families,
            segments=segments,
            history=_history(src),
            profiles=_profiles(src),
            definitions=definitions,
            reasons=_reasons(src),
            leaves=_leaves(src),
            traits=_traits(src),
            transition_runs=_transition_runs(src),
            transitions=_transitions(src),
            top_moves=_top_moves(src),
            alerts=_alerts(src, publication.run_id),
            actions=_actions(src, publication.run_id),
            lift=_lift(src),
            predictions=_predictions(src, definitions),
            names=_names(src, segments),
        )


def _publication(src: _Source, version_dir: Path) -> Publication:
    """Version, run and time from `serving.publication`, else from the folder's manifest.json."""
    version, run_id, published_at = version_dir.name, None, None
    if src.has("serving.publication", "version", "run_id", "published_at"):
        found = src.rows("select version, run_id, published_at from serving.publication order by published_at desc")
        if found:
            version, run_id, published_at = found[0]["version"], found[0]["run_id"], found[0]["published_at"]
    else:
        try:
            manifest = json.loads((version_dir / "manifest.json").read_text())
            version, run_id = manifest.get("version", version), manifest.get("run_id")
            published_at = datetime.fromisoformat(str(manifest["published_at"]).replace("Z", "+00:00"))
            published_at = published_at.replace(tzinfo=None)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if src.has("reporting.customers", "customer_id"):
        customers = src.rows("select count(*) as n from reporting.customers")[0]["n"]
    else:
        customers = src.rows("select count(distinct customer_id) as n from segments.customer_segments")[0]["n"]
    return Publication(version=str(version), run_id=run_id, published_at=published_at, customers=int(customers))


def _segments(src: _Source) -> list[Row]:
    """Current size and share of every segment; within a family the largest first, fallbacks last."""
    t = "segments.customer_segments"
    optional = src.cols(t, ["definition_version", "model_name", "model_version", "dagster_run_id"])
    return src.rows(
        f"""
        with s as (
            select segment_family, segment_key, segment_name, {optional}, {src.col(t, "is_fallback", "false")}
            from {t}
        )
        select segment_family as family, segment_key as key, min(segment_name) as name,
               count(*) as customers,
               count(*) / sum(count(*)) over (partition by segment_family) as share,
               coalesce(bool_or(is_fallback), false) as is_fallback,
               min(definition_version) as definition_version, min(model_name) as model_name,
               min(model_version) as model_version, max(dagster_run_id) as run_id
        from s
        group by segment_family, segment_key
        order by family, is_fallback, customers desc, key
        """
    )


def _names(src: _Source, segments: list[Row]) -> dict[tuple[str, str], str]:
    """Segment key -> name per family (alerts and playbooks carry keys only): the current names, else the
    latest name a key had in the transitions or the membership history."""
    names: dict[tuple[str, str], str] = {}
    sources = [
        ("segments.segment_membership_history", "segment_key", "segment_name", "valid_from"),
        ("segments.segment_transitions", "from_segment_key", "from_segment_name", "scored_at"),
        ("segments.segment_transitions", "to_segment_key", "to_segment_name", "scored_at"),
    ]
    for table, key, name, ts in sources:
        if src.has(table, "segment_family", key, name, ts):
            for r in src.rows(
                f"""select segment_family as f, {key} as k, arg_max({name}, {ts}) as n
                    from {table} where {name} is not null group by all order by 1, 2"""
            ):
                names[(r["f"], r["k"])] = r["n"]
    names.update({(r["family"], r["key"]): r["name"] for r in segments})
    return names


def _history(src: _Source) -> list[Row] | None:
    """Members per segment at every instant a membership period opened or closed, and at every profiled
    run: SCD2 periods turned into +1/-1 events, running sums, read as of each instant (ASOF join)."""
    h = "segments.segment_membership_history"
    if not src.has(h, "segment_family", "segment_key", "valid_from", "valid_to"):
        return None
    runs = ""
    if src.has("segments.segment_profiles", "segment_family", "profiled_at"):
        runs = "union select distinct segment_family, profiled_at from segments.segment_profiles"
    return src.rows(
        f"""
        with events as (
            select segment_family, segment_key, valid_from as ts, 1 as d from {h}
            union all
            select segment_family, segment_key, valid_to, -1 from {h} where valid_to is not null
        ),
        per as (select segment_family, segment_key, ts, sum(d) as delta from events group by all),
        running as (
            select segment_family, segment_key, ts,
                   sum(delta) over (partition by segment_family, segment_key order by ts
                                    rows between unbounded preceding and current row) as customers
            from per
        ),
        instants as (select distinct segment_family, ts from per {runs}),
        keys as (select distinct segment_family, segment_key from per)
        select i.segment_family as family, i.ts, k.segment_key as key, coalesce(r.customers, 0) as customers
        from instants i
        join keys k using (segment_family)
        asof left join running r
          on r.segment_family = k.segment_family and r.segment_key = k.segment_key and i.ts >= r.ts
        where i.ts is not null
        order by family, i.ts, key
        """
    )


PROFILE_COLUMNS = (
    "segment_key",
    "segment_name",
    "customers",
    "share",
    "avg_aov_base",
    "avg_frequency",
    "avg_revenue_base",
    "total_revenue_base",
    "churn_rate",
    "avg_tenure_days",
    "avg_recency_days",
    "avg_csat",
    "avg_expected_revenue_base",
    "value_growth",
    "dagster_run_id",
    "profiled_at",
)


def _profiles(src: _Source) -> list[Row] | None:
    """Per family, the profiles of the run that made the current assignments (else of the latest run)."""
    p = "segments.segment_profiles"
    if not src.has(p, "dagster_run_id", "profiled_at", "segment_family", "segment_key", "customers"):
        return None
    picked = ", ".join(f"p.{c}" if src.has(p, c) else f"null as {c}" for c in PROFILE_COLUMNS)
    return src.rows(
        f"""
        with assigned as (
            select segment_family, max({src.col("segments.customer_segments", "dagster_run_id")}) as run_id
            from segments.customer_segments group by 1
        ),
        runs as (select segment_family, dagster_run_id, max(profiled_at) as ts from {p} group by all),
        chosen as (
            select r.segment_family, r.dagster_run_id
            from runs r left join assigned a using (segment_family)
            qualify row_number() over (
                partition by r.segment_family
                order by coalesce(r.dagster_run_id = a.run_id, false) desc, r.ts desc, r.dagster_run_id
            ) = 1
        )
        select p.segment_family as family, {picked}
        from {p} p join chosen c using (segment_family, dagster_run_id)
        order by family, p.customers desc, p.segment_key
        """
    )


def _definitions(src: _Source, segments: list[Row]) -> dict[str, Row]:
    """Per family the definition in use: the version of the current assignments, else the newest."""
    d = "segments.segment_definitions"
    if not src.has(d, "segment_family", "definition_version", "content"):
        return {}
    in_use = {r["family"]: r["definition_version"] for r in segments}
    rows = src.rows(
        f"""select segment_family as family, {src.cols(d, ["definition_name", "description", "first_used_at"])},
                   definition_version as version, content::varchar as content
            from {d} order by family, first_used_at desc nulls last, version desc"""
    )
    chosen: dict[str, Row] = {}
    for r in rows:  # newest first: keep the newest, replaced by the version in use where there is one
        current = chosen.get(r["family"])
        if current is None or (r["version"] == in_use.get(r["family"]) and current["version"] != r["version"]):
            chosen[r["family"]] = r
    for r in chosen.values():
        try:
            r["content"] = json.loads(r["content"]) if r["content"] else {}
        except ValueError:
            r["content"] = {}
    return chosen


def _reasons(src: _Source) -> list[Row]:
    """The most common reasons (the rule that placed a customer) per segment, with how many distinct
    reasons and customers the segment has in all."""
    t = "segments.customer_segments"
    if not src.has(t, "reason"):
        return []
    return src.rows(
        f"""
        with r as (
            select segment_family as family, segment_key as key, reason, count(*) as customers
            from {t} where reason is not null group by all
        )
        select *, count(*) over w as reasons, sum(customers) over w as total
        from r
        window w as (partition by family, key)
        qualify row_number() over (partition by family, key order by customers desc, reason) <= ?
        order by family, key, customers desc, reason
        """,
        [RULES_PER_SEGMENT],
    )


# A learnt family's reason: "rule: <the surrogate tree's leaf>; traits: <the cluster's traits>".
_RULE = "split_part(reason, '; traits:', 1)"
_TRAITS = "trim(split_part(reason, '; traits:', 2))"


def _leaves(src: _Source) -> list[Row]:
    """The readable rules of learnt segments. The model (a clustering) places the customer; the rule in its
    reason is the leaf of a surrogate decision tree, which can point to another segment for a few customers.
    So a leaf is listed under the segment that most of its customers are in (the segment the tree predicts),
    with how many of them are; `covered` is how many customers of the segment its own leaves hold."""
    t = "segments.customer_segments"
    if not src.has(t, "reason"):
        return []
    return src.rows(
        f"""
        with r as (
            select segment_family as family, segment_key as key, {_RULE} as rule, count(*) as customers
            from {t} where reason like 'rule:%' group by all
        ),
        leaves as (
            select family, key, rule, customers, sum(customers) over (partition by family, rule) as leaf_total
            from r
            qualify row_number() over (partition by family, rule order by customers desc, key) = 1
        )
        select *, count(*) over w as rules, sum(customers) over w as covered
        from leaves
        window w as (partition by family, key)
        qualify row_number() over (partition by family, key order by customers desc, rule) <= ?
        order by family, key, customers desc, rule
        """,
        [RULES_PER_SEGMENT],
    )


def _traits(src: _Source) -> dict[tuple[str, str], str]:
    t = "segments.customer_segments"
    if not src.has(t, "reason"):
        return {}
    rows = src.rows(
        f"""select segment_family as family, segment_key as key, min({_TRAITS}) as traits
            from {t} where reason like 'rule:%' and reason like '%; traits:%' group by all"""
    )
    return {(r["family"], r["key"]): r["traits"] for r in rows if r["traits"]}


_TRANSITIONS = "segments.segment_transitions"
_TRANSITION_COLUMNS = (
    "dagster_run_id",
    "scored_at",
    "segment_family",
    "from_segment_key",
    "to_segment_key",
    "is_move",
    "customers",
)
_LATEST_TRANSITION_RUN = f"""
    latest as (
        select segment_family, dagster_run_id
        from (select segment_family, dagster_run_id, max(scored_at) as ts from {_TRANSITIONS} group by all)
        qualify row_number() over (partition by segment_family order by ts desc, dagster_run_id desc) = 1
    )"""


def _transition_runs(src: _Source) -> dict[str, Row] | None:
    """Per family the latest run's ids and counts, how many runs have transitions, and the latest run in
    which customers moved (a re-run on unchanged data moves nobody)."""
    if not src.has(_TRANSITIONS, *_TRANSITION_COLUMNS):
        return None
    rows = src.rows(
        f"""with {_LATEST_TRANSITION_RUN},
            per_run as (
                select segment_family, dagster_run_id, max(scored_at) as scored_at,
                       max({src.col(_TRANSITIONS, "previous_run_id")}) as previous_run_id,
                       coalesce(sum(customers) filter (where is_move), 0) as moved, sum(customers) as customers
                from {_TRANSITIONS} group by all
            ),
            last_moves as (
                select segment_family, dagster_run_id as last_move_run_id, scored_at as last_move_scored_at,
                       moved as last_moved
                from per_run where moved > 0
                qualify row_number() over (partition by segment_family order by scored_at desc, dagster_run_id desc) = 1
            )
            select r.segment_family as family, r.dagster_run_id as run_id, r.scored_at, r.previous_run_id,
                   r.moved, r.customers,
                   (select count(*) from per_run a where a.segment_family = r.segment_family) as runs,
                   m.last_move_run_id, m.last_move_scored_at, m.last_moved
            from per_run r
            join latest using (segment_family, dagster_run_id)
            left join last_moves m using (segment_family)
            order by family"""
    )
    return {r["family"]: r for r in rows}


def _transitions(src: _Source) -> list[Row] | None:
    """The latest run's matrix per family: segment before (from) x segment after (to), customers."""
    if not src.has(_TRANSITIONS, *_TRANSITION_COLUMNS):
        return None
    return src.rows(
        f"""with {_LATEST_TRANSITION_RUN}
            select t.segment_family as family, t.from_segment_key as from_key, t.to_segment_key as to_key,
                   sum(t.customers) as customers, bool_or(t.is_move) as is_move
            from {_TRANSITIONS} t join latest using (segment_family, dagster_run_id)
            group by all order by family, from_key, to_key"""
    )


def _top_moves(src: _Source) -> list[Row] | None:
    """The largest moves (from != to) of the latest run per family."""
    if not src.has(_TRANSITIONS, *_TRANSITION_COLUMNS):
        return None
    return src.rows(
        f"""with {_LATEST_TRANSITION_RUN},
            moves as (
                select t.segment_family as family, t.from_segment_key as from_key, t.to_segment_key as to_key,
                       sum(t.customers) as customers
                from {_TRANSITIONS} t join latest using (segment_family, dagster_run_id)
                where t.is_move
                group by all
            )
            select * from moves
            qualify row_number() over (partition by family order by customers desc, from_key, to_key) <= ?
            order by family, customers desc, from_key, to_key""",
        [TOP_MOVES],
    )


def _alerts(src: _Source, run_id: str | None) -> list[Row] | None:
    a = "segments.segment_alerts"
    if not src.has(a, "alert_name"):
        return None
    columns = ["segment_family", "from_segment_key", "to_segment_key", "revenue_base", "owner", "due_date"]
    optional = src.cols(a, [*columns, "created_run_id"])
    return src.rows(
        f"""
        with a as (select alert_name, {optional} from {a})
        select alert_name, segment_family as family, from_segment_key as from_key, to_segment_key as to_key,
               owner, count(*) as alerts, sum(revenue_base) as revenue_base,
               min(due_date) as first_due, max(due_date) as last_due,
               count(*) filter (where created_run_id = ?) as latest_run
        from a group by all
        order by alerts desc, alert_name, family, from_key, to_key, owner
        """,
        [run_id],
    )


def _actions(src: _Source, run_id: str | None) -> list[Row] | None:
    """The outbox per playbook action: rows, treated (to send) and holdout (never sent)."""
    t = "segments.segment_actions"
    if not src.has(t, "action_name"):
        return None
    columns = ["channel", "purpose", "lawful_basis", "trigger_kind", "owner", "created_at", "created_run_id"]
    optional = f"{src.cols(t, columns)}, {src.col(t, 'is_holdout', 'false')}"
    return src.rows(
        f"""
        with a as (select action_name, {optional} from {t})
        select action_name, channel, purpose, lawful_basis, trigger_kind, owner,
               count(*) as actions,
               count(*) filter (where not coalesce(is_holdout, false)) as treated,
               count(*) filter (where coalesce(is_holdout, false)) as holdout,
               count(*) filter (where created_run_id = ?) as latest_run,
               min(created_at) as first_created_at, max(created_at) as last_created_at
        from a group by all
        order by action_name, channel, purpose, lawful_basis, trigger_kind, owner
        """,
        [run_id],
    )


LIFT_COLUMNS = (
    "lift_window_days",
    "as_of_date",
    "open_windows",
    "next_window_end_date",
    "treated_customers",
    "holdout_customers",
    "purchase_rate_lift",
    "purchase_rate_lift_ci_low",
    "purchase_rate_lift_ci_high",
    "revenue_per_customer_lift_base",
    "revenue_per_customer_lift_ci_low_base",
    "revenue_per_customer_lift_ci_high_base",
    "retention_rate_lift",
    "retention_rate_lift_ci_low",
    "retention_rate_lift_ci_high",
    "min_group_customers",
    "lift_status",
)


def _lift(src: _Source) -> list[Row] | None:
    t = "segments.playbook_lift"
    if not src.has(t, "action_name"):
        return None
    return src.rows(f"select action_name, {src.cols(t, LIFT_COLUMNS)} from {t} order by action_name")


def _churn_thresholds(definitions: dict[str, Row]) -> tuple[float, float]:
    """(high, medium) churn-risk bounds: the highest churn-probability bound the prediction definition
    names segments by (default 0.6), and half of it."""
    content = (definitions.get("predictive") or {}).get("content") or {}
    bounds = []
    for segment in content.get("segments") or []:
        when = segment.get("when") if isinstance(segment, dict) else None
        bound = (when or {}).get("churn_probability") if isinstance(when, dict) else None
        if isinstance(bound, dict) and isinstance(bound.get("min"), int | float) and 0 < bound["min"] <= 1:
            bounds.append(float(bound["min"]))
    high = max(bounds, default=DEFAULT_HIGH_CHURN)
    return high, high / 2


def _predictions(src: _Source, definitions: dict[str, Row]) -> Predictions | None:
    p = "segments.customer_predictions"
    if not src.has(p, "customer_id", "churn_probability", "expected_revenue_base"):
        return None
    high, medium = _churn_thresholds(definitions)
    cols = src.cols(
        p, ["as_of_date", "horizon_days", "not_predicted_reason", "churn_model_version", "value_model_version"]
    )
    base = f"(select customer_id, churn_probability, expected_revenue_base, {cols} from {p})"
    predicted = f"(select * from {base} where churn_probability is not null and expected_revenue_base is not null)"
    tier = f"""case when churn_probability >= {high!r} then 'high' when churn_probability >= {medium!r} then 'medium'
                    else 'low' end"""
    value_tier = "ntile(5) over (order by expected_revenue_base desc, churn_probability, customer_id)"
    tiers = f"(select *, {tier} as risk, {value_tier} as value_tier from {predicted})"
    summary = src.rows(
        f"""select count(*) as customers, count(churn_probability) as predicted,
                   max(as_of_date) as as_of_date, max(horizon_days) as horizon_days,
                   avg(churn_probability) as avg_churn, sum(expected_revenue_base) as total_expected_revenue_base,
                   avg(expected_revenue_base) as avg_expected_revenue_base,
                   max(churn_model_version) as churn_model_version, max(value_model_version) as value_model_version
            from {base}"""
    )[0]
    return Predictions(
        summary=summary,
        not_predicted=src.rows(
            f"""select coalesce(not_predicted_reason, 'no prediction') as reason, count(*) as customers
                from {base} where churn_probability is null or expected_revenue_base is null
                group by all order by customers desc, reason"""
        ),
        churn_histogram=src.rows(
            f"""select b.bin, count(p.churn_probability) as customers
                from range(10) b(bin)
                left join {predicted} p on least(floor(p.churn_probability * 10), 9) = b.bin
                group by b.bin order by b.bin"""
        ),
        risk_tiers=src.rows(
            f"""select risk, count(*) as customers, avg(churn_probability) as avg_churn,
                       avg(expected_revenue_base) as avg_expected_revenue_base,
                       sum(expected_revenue_base) as total_expected_revenue_base
                from {tiers} group by risk
                order by case risk when 'high' then 0 when 'medium' then 1 else 2 end"""
        ),
        value_tiers=src.rows(
            f"""select value_tier, count(*) as customers, min(expected_revenue_base) as min_expected,
                       max(expected_revenue_base) as max_expected, avg(expected_revenue_base) as avg_expected,
                       sum(expected_revenue_base) as total_expected, avg(churn_probability) as avg_churn
                from {tiers} group by value_tier order by value_tier"""
        ),
        risk_by_value=src.rows(
            f"""select risk, value_tier, count(*) as customers, sum(expected_revenue_base) as total_expected
                from {tiers} group by all order by risk, value_tier"""
        ),
        high_churn=high,
        medium_churn=medium,
    )
