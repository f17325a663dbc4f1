"""Identity resolution end to end: candidate records in, one cluster label per record out.

    candidates ─┬─ deterministic rules (rules.py) ─────────────┐
                └─ profiles ── Splink (probabilistic.py) ──────┴─ name guard ─ clusters + guardrails

Everything runs in one DuckDB connection (the caller's). Python touches only the graph arrays
(scipy connected components) and the few suspicious components.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ml.identity.clustering import (
    RULE_STRENGTH,
    ClusterResult,
    ReviewItem,
    components,
    corroborated_merges,
    resolve_clusters,
)
from ml.identity.config import IdentityConfig
from ml.identity.overrides import NO_OVERRIDES, OVERRIDES_TABLE, OverridesApplied, load_overrides
from ml.identity.probabilistic import COMPARED_COLUMNS, PROFILES_TABLE, SCORES_TABLE, link_profiles
from ml.identity.rules import SHARED_KEYS_SQL, Guards, deterministic_edges_sql, measure_guards, records_conflict
from ml.identity.threshold import Threshold, apply_threshold, borderline_pairs, calibrate, load_labels

# Fields of a profile: records equal on all of them (and identifying) are one profile. Splink compares
# all but the country, which only keeps otherwise equal records of two countries apart.
PROFILE_FIELDS = (*COMPARED_COLUMNS, "country")


@dataclass
class LinkageResult:
    """Per-record clusters (table `identity_clusters(node, cluster, matched_on, match_probability)`
    in the connection), review items, the trained Splink model and stage timings."""

    records: int
    reviews: list[ReviewItem]
    splink_model: dict[str, Any]
    edges_by_rule: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. why Splink training was skipped
    plan: dict[str, Any] = field(default_factory=dict)  # comparisons, blocking rules and pairs, what was skipped
    threshold: Threshold | None = None
    pairs_scored: int = 0  # pairs Splink kept (at or above review_floor)
    uncorroborated_links: int = 0  # probable links dropped: the pairs between their groups disagree
    overrides: OverridesApplied = NO_OVERRIDES
    unlinked: dict[str, Any] = field(default_factory=dict)  # what stayed alone, and why (store.count_unlinked)

    def describe(self) -> dict[str, Any]:
        """What the run compared, blocked on and linked at, and why anything was skipped (JSON-ready)."""
        return {
            **self.plan,
            "pairs_scored": self.pairs_scored,
            "uncorroborated_links": self.uncorroborated_links,
            "overrides": self.overrides.describe(),
            "unlinked": self.unlinked,
            "match_threshold": (
                {"value": self.threshold.value, "source": self.threshold.source, **self.threshold.detail}
                if self.threshold
                else None
            ),
            "notes": self.notes,
        }


def load_records(con: duckdb.DuckDBPyConnection, candidates_table: str) -> int:
    """Copy the candidates into the working table `identity_records` with a dense `node` id (the
    rank of its record_id), stored in node order.

    The ids are ranked alone and joined back: a window over the whole rows sorts every column by a
    string key (6.5-10 s at 3.8M records, against 3.4-4.5 s for this; identical table, rows in the
    same order, which Splink's sampling reads)."""
    con.execute(
        f"""create or replace temp table identity_records as
            with ids as (
                select record_id, (row_number() over (order by record_id) - 1)::bigint as node
                from {candidates_table}
            )
            select ids.node, t.*
            from {candidates_table} as t
            inner join ids using (record_id)
            order by ids.node"""
    )
    rows, nodes = con.execute("select count(*), coalesce(max(node) + 1, 0) from identity_records").fetchall()[0]
    source = con.execute(f"select count(*) from {candidates_table}").fetchall()[0][0]
    if rows != source or nodes != rows:  # the dbt tests on record_id (unique, not null) normally stop this first
        raise ValueError(
            f"{candidates_table}: record_id must be unique and not null "
            f"({source} candidates, {rows} loaded, {nodes} node ids)"
        )
    return rows


def build_profiles(con: duckdb.DuckDBPyConnection) -> None:
    """`identity_profiles` (Splink's input, `unique_id` = a representative node) and
    `identity_profile_edges` (record -> representative, rule identical_profile).

    Only named CRM/ERP/support records are profiled; device records (events) carry no name and
    link by rule only. A profile without an identifying field (e-mail, phone, birth date or full
    address) is never shared: two tickets signed "Anna Müller" alone are not one person.
    """
    cols = ", ".join(PROFILE_FIELDS)
    key = " || '|' || ".join(f"coalesce(cast({c} as varchar), '')" for c in PROFILE_FIELDS)
    con.execute(
        f"""create or replace temp table identity_profile_members as
            with named as (
                select r.node, r.given_name_key, r.first_name_key, r.last_name_key,
                    case when se.value is null then r.email_key end as email_key,
                    case when sp.value is null then r.phone_nsn end as phone_nsn,
                    r.postal_code_key, r.street_key, r.city_key, r.birth_date, r.country,
                    r.gender_key, r.birth_place_key, r.occupation_key, r.company_key
                from identity_records as r
                left join identity_shared_keys as se on se.field = 'email' and se.value = r.email_key
                left join identity_shared_keys as sp on sp.field = 'phone' and sp.value = r.phone_nsn
                where r.source_system in ('crm', 'erp', 'support')
                    and (r.given_name_key is not null or r.last_name_key is not null)
            )
            select
                node, {cols},
                case
                    when email_key is not null or phone_nsn is not null or birth_date is not null
                        or (postal_code_key is not null and street_key is not null)
                    then md5({key})
                    else 'node:' || node
                end as profile_key
            from named"""
    )
    con.execute(
        f"""create or replace temp table {PROFILES_TABLE} as
            select *,
                -- derived once per profile for the comparisons (probabilistic.py), not per pair
                strftime(birth_date, '%Y-%m-%d') as birth_date_text,
                regexp_replace(street_key, '[0-9].*$', '') as street_name,
                regexp_extract(street_key, '[0-9]+[a-z]?') as house_number,
                regexp_replace(split_part(email_key, '@', 1), '[._-]', '', 'g') as mailbox_name,
                case when length(postal_code_key) >= 4 then left(postal_code_key, length(postal_code_key) - 2) end
                    as postal_area
            from (
                select min(node) as unique_id, {", ".join(f"any_value({c}) as {c}" for c in PROFILE_FIELDS)}
                from identity_profile_members
                group by profile_key
            )"""
    )
    con.execute(
        """create or replace temp table identity_profile_map as
           select m.node, p.unique_id
           from identity_profile_members as m
           inner join (select profile_key, min(node) as unique_id
                       from identity_profile_members group by profile_key) as p
               using (profile_key)"""
    )
    con.execute(
        """create or replace temp table identity_profile_edges as
           select unique_id as node_l, node as node_r, 'identical_profile' as rule
           from identity_profile_map where node <> unique_id"""
    )


def collect_edges(con: duckdb.DuckDBPyConnection, config: IdentityConfig, guards: Guards, threshold: Threshold) -> None:
    """`identity_edges(node_l, node_r, rule, match_probability, strength)`: every link at or above the
    threshold. Splink pairs between records that contradict each other are vetoed
    (`identity_vetoed_scores`, of which those at or above the threshold are `identity_vetoed_pairs`
    for review statistics)."""
    conflict = records_conflict("l", "r", config, guards)
    con.execute(
        f"""create or replace temp table identity_vetoed_scores as
            select e.unique_id_l as node_l, e.unique_id_r as node_r, e.match_probability
            from {SCORES_TABLE} as e
            inner join identity_records as l on l.node = e.unique_id_l
            inner join identity_records as r on r.node = e.unique_id_r
            where {conflict}"""
    )
    con.execute(
        f"""create or replace temp table identity_vetoed_pairs as
            select * from identity_vetoed_scores where match_probability >= {threshold.value!r}"""
    )
    strength_cases = " ".join(f"when '{rule}' then {w}" for rule, w in RULE_STRENGTH.items())
    con.execute(
        f"""create or replace temp table identity_edges as
            with all_edges as (
                select node_l, node_r, rule, cast(null as double) as match_probability from identity_rule_edges
                union all
                select node_l, node_r, rule, null from identity_profile_edges
                union all
                select e.unique_id_l, e.unique_id_r, 'splink', e.match_probability
                from identity_splink_edges as e
                anti join identity_vetoed_pairs as v on v.node_l = e.unique_id_l and v.node_r = e.unique_id_r
            )
            select
                least(node_l, node_r) as node_l, greatest(node_l, node_r) as node_r, rule, match_probability,
                case rule {strength_cases} else coalesce(match_probability, 0) end as strength
            from all_edges"""
    )


def corroborate(con: duckdb.DuckDBPyConnection, n: int, config: IdentityConfig, threshold: Threshold) -> int:
    """Drop the Splink links of `identity_edges` that `clustering.corroborated_merges` does not
    support (a probable link whose groups' other pairs disagree); returns how many were dropped."""
    sure = con.execute(
        f"""select node_l, node_r from identity_edges
            where rule <> 'splink' or match_probability >= {config.sure_match_threshold!r}"""
    ).fetchnumpy()
    pairs = con.execute(
        f"""select s.unique_id_l, s.unique_id_r, s.match_probability from {SCORES_TABLE} as s
           anti join identity_vetoed_scores as v on v.node_l = s.unique_id_l and v.node_r = s.unique_id_r"""
    ).fetchnumpy()
    weight = np.zeros(n, dtype=np.float64)
    profiles = con.execute(f"select unique_id from {PROFILES_TABLE}").fetchnumpy()["unique_id"]
    weight[np.asarray(profiles, dtype=np.int64)] = 1.0
    groups = corroborated_merges(
        n,
        np.asarray(sure["node_l"], dtype=np.int64),
        np.asarray(sure["node_r"], dtype=np.int64),
        np.asarray(pairs["unique_id_l"], dtype=np.int64),
        np.asarray(pairs["unique_id_r"], dtype=np.int64),
        np.asarray(pairs["match_probability"], dtype=np.float64),
        weight,
        threshold.value,
        config.min_link_support,
    )
    con.register("_groups", pa.table({"node": np.arange(n, dtype=np.int64), "grp": groups.astype(np.int64)}))
    try:
        (dropped,) = con.execute(
            """delete from identity_edges as e using _groups as gl, _groups as gr
               where e.rule = 'splink' and gl.node = e.node_l and gr.node = e.node_r and gl.grp <> gr.grp"""
        ).fetchall()[0]
    finally:
        con.unregister("_groups")
    return int(dropped)


def _never_links(con: duckdb.DuckDBPyConnection) -> list[tuple[int, int]]:
    """Remove every link between two records a reviewer said are never one person (rule, profile or
    Splink) and the pair from Splink's scores; returns the pairs (node_l < node_r)."""
    pairs = [
        (int(a), int(b))
        for a, b in con.execute(
            f"""select least(node_l, node_r), greatest(node_l, node_r) from {OVERRIDES_TABLE}
                where decision = 'never_link' and node_l is not null and node_r is not null"""
        ).fetchall()
    ]
    if pairs:
        con.execute(
            f"""delete from identity_edges as e using {OVERRIDES_TABLE} as o
                where o.decision = 'never_link'
                    and e.node_l = least(o.node_l, o.node_r) and e.node_r = greatest(o.node_l, o.node_r)"""
        )
        con.execute(
            f"""delete from {SCORES_TABLE} as e using {OVERRIDES_TABLE} as o
                where o.decision = 'never_link'
                    and e.unique_id_l = least(o.node_l, o.node_r) and e.unique_id_r = greatest(o.node_l, o.node_r)"""
        )
    return pairs


def _with_overrides(
    conflicts: dict[int, list[tuple[int, int]]],
    labels: np.ndarray,
    unlinked: np.ndarray,
    never: list[tuple[int, int]],
    con: duckdb.DuckDBPyConnection,
) -> dict[int, list[tuple[int, int]]]:
    """The contradictions the guardrails must separate, as reviewers decided: never-linked pairs that
    share a component are added; a force link says the two groups it joins are one person, so what
    their records contradict between the groups (`unlinked`: the groups without the override links)
    is no contradiction."""
    joined = {
        (int(unlinked[a]), int(unlinked[b]))
        for a, b in con.execute(
            f"""select node_l, node_r from {OVERRIDES_TABLE}
                where decision = 'link' and node_l is not null and node_r is not null"""
        ).fetchall()
    }
    joined |= {(b, a) for a, b in joined}
    out: dict[int, list[tuple[int, int]]] = {}
    for comp, pairs in conflicts.items():
        kept = [(a, b) for a, b in pairs if (int(unlinked[a]), int(unlinked[b])) not in joined]
        if kept:
            out[comp] = kept
    for a, b in never:
        if labels[a] == labels[b]:
            out.setdefault(int(labels[a]), []).append((a, b))
    return out


def conflicts_by_component(
    con: duckdb.DuckDBPyConnection, labels: np.ndarray, config: IdentityConfig, guards: Guards
) -> dict[int, list[tuple[int, int]]]:
    """Pairs of contradicting records per component. Compares distinct name/birth-date variants
    per component first (a handful per person), so the cost stays linear in records."""
    con.register("_component_labels", pa.table({"node": np.arange(len(labels)), "component": labels}))
    conflict = records_conflict("l", "r", config, guards)
    try:
        rows = con.execute(
            f"""
            with named as (
                select c.component, r.node, r.given_name_key, r.first_name_key, r.last_name_key, r.birth_date
                from identity_records as r
                inner join _component_labels as c using (node)
                where r.given_name_key is not null or r.birth_date is not null
            ),
            multi as (
                select component from named group by component
                having count(distinct given_name_key) > 1 or count(distinct birth_date) > 1
            ),
            variants as (
                select
                    component, given_name_key, first_name_key, last_name_key, birth_date, list(node) as nodes,
                    row_number() over () as variant
                from named semi join multi using (component)
                group by component, given_name_key, first_name_key, last_name_key, birth_date
            ),
            conflicting as (
                select l.component, l.nodes as nodes_l, r.nodes as nodes_r
                from variants as l
                inner join variants as r on l.component = r.component and l.variant < r.variant
                where {conflict}
            )
            -- every node of one variant against every node of the other
            select component, a, unnest(nodes_r) as b
            from (select component, unnest(nodes_l) as a, nodes_r from conflicting)
            """
        ).fetchall()
    finally:
        con.unregister("_component_labels")
    out: dict[int, list[tuple[int, int]]] = {}
    for comp, a, b in rows:
        out.setdefault(int(comp), []).append((int(a), int(b)))
    return out


def borderline_reviews(
    con: duckdb.DuckDBPyConnection, threshold: Threshold, config: IdentityConfig, guards: Guards
) -> list[ReviewItem]:
    """Review items for the borderline pairs (see `threshold.borderline_pairs`) that no guard vetoes."""
    pairs = borderline_pairs(con, threshold, config)
    if not pairs:
        return []
    con.register("_borderline", pa.table({"l": [a for a, _, _ in pairs], "r": [b for _, b, _ in pairs]}))
    try:
        conflict = records_conflict("l", "r", config, guards)
        vetoed = {
            (int(a), int(b))
            for a, b in con.execute(
                f"""select b.l, b.r from _borderline as b
                    inner join identity_records as l on l.node = b.l
                    inner join identity_records as r on r.node = b.r
                    where {conflict}"""
            ).fetchall()
        }
    finally:
        con.unregister("_borderline")
    return [
        ReviewItem(
            "borderline_pair",
            [a, b],
            f"match probability {p:.4f} just under the threshold {threshold.value:.4f} ({threshold.source}): "
            "link them or keep them apart",
        )
        for a, b, p in pairs
        if (a, b) not in vetoed
    ]


def link_records(
    con: duckdb.DuckDBPyConnection,
    config: IdentityConfig,
    candidates_table: str = "intermediate.int_identity_candidates",
    previous_model: dict[str, Any] | None = None,
    labels_path: Path | None = None,
    overrides_path: Path | None = None,
) -> LinkageResult:
    """Resolve the candidates into clusters; leaves `identity_clusters` and the review items.
    `previous_model` (a Splink model dict) scores when this data is too small to train on;
    `labels_path`: labelled pairs that set the match threshold (`threshold.load_labels`);
    `overrides_path`: reviewers' link / never-link decisions (`overrides`), applied before clustering."""
    timings: dict[str, float] = {}
    t = time.monotonic()
    n = load_records(con, candidates_table)
    overrides = load_overrides(con, overrides_path)
    con.execute(SHARED_KEYS_SQL.format(limit=int(config.max_cluster_size)))
    con.execute(deterministic_edges_sql(config))
    con.execute(
        f"""insert into identity_rule_edges
            select least(node_l, node_r), greatest(node_l, node_r), 'override_link' from {OVERRIDES_TABLE}
            where decision = 'link' and node_l is not null and node_r is not null"""
    )
    build_profiles(con)
    guards = measure_guards(con, "identity_records", config)
    timings["rules"] = time.monotonic() - t

    t = time.monotonic()
    prob = link_profiles(con, config, previous_model)
    has_labels = labels_path is not None and load_labels(con, labels_path) > 0
    threshold = calibrate(con, config, has_labels)
    apply_threshold(con, threshold)
    reviews = borderline_reviews(con, threshold, config, guards)
    timings["splink"] = time.monotonic() - t

    t = time.monotonic()
    collect_edges(con, config, guards, threshold)
    never = _never_links(con)
    uncorroborated = corroborate(con, n, config, threshold)
    # the scored pairs and profiles are done with: the clustering below needs the memory at scale
    for table in (SCORES_TABLE, "identity_vetoed_scores", "identity_profile_members", PROFILES_TABLE):
        con.execute(f"drop table if exists {table}")
    edges = con.execute(
        "select node_l, node_r, strength, rule = 'override_link' as forced from identity_edges"
    ).fetchnumpy()
    left = np.asarray(edges["node_l"], dtype=np.int64)
    right = np.asarray(edges["node_r"], dtype=np.int64)
    strength = np.asarray(edges["strength"], dtype=np.float64)
    forced = np.asarray(edges["forced"], dtype=bool)
    initial = components(n, left, right)
    unlinked = components(n, left[~forced], right[~forced]) if forced.any() else initial
    conflicts = _with_overrides(conflicts_by_component(con, initial, config, guards), initial, unlinked, never, con)
    nameless = (
        {
            int(v)
            for (v,) in con.execute(
                "select node from identity_records where given_name_key is null and last_name_key is null"
            ).fetchall()
        }
        if conflicts
        else set()
    )
    result: ClusterResult = resolve_clusters(
        n,
        left,
        right,
        strength,
        conflicts,
        nameless,
        config.max_cluster_size,
        strong_strength=config.strong_match_threshold,
    )
    # copied into a table once: `_write_clusters` reads the labels three times, and an Arrow scan
    # costs each time (6.6 s -> 4.1 s with the copy at 3.8M records)
    con.register(
        "_cluster_labels_arrow",
        pa.table({"node": np.arange(n, dtype=np.int64), "cluster": result.labels.astype(np.int64)}),
    )
    try:
        con.execute("create or replace temp table _cluster_labels as select * from _cluster_labels_arrow")
    finally:
        con.unregister("_cluster_labels_arrow")
    try:
        _write_clusters(con)
    finally:
        con.execute("drop table if exists _cluster_labels")
    timings["clustering"] = time.monotonic() - t
    edges_by_rule = dict(
        con.execute("select rule, count(*) from identity_edges group by rule order by rule").fetchall()
    )
    return LinkageResult(
        n,
        result.reviews + reviews,
        prob.model,
        edges_by_rule,
        timings,
        prob.notes,
        plan={
            **prob.plan,
            "guards": {
                "given_names": guards.given_names,
                "birth_dates": guards.birth_dates,
                "evidence": guards.evidence,
            },
        },
        threshold=threshold,
        pairs_scored=prob.pairs_scored,
        uncorroborated_links=uncorroborated,
        overrides=overrides,
    )


def _write_clusters(con: duckdb.DuckDBPyConnection) -> None:
    """`identity_clusters(node, cluster, matched_on, match_probability)` from `_cluster_labels`."""
    # matched_on: the strongest accepted link a record has inside its final cluster
    con.execute(
        """create or replace temp table identity_clusters as
           with inside as (
               select e.*, cl.cluster
               from identity_edges as e
               inner join _cluster_labels as cl on cl.node = e.node_l
               inner join _cluster_labels as cr on cr.node = e.node_r and cr.cluster = cl.cluster
           ),
           per_node as (
               -- both ends of each link in one pass: `inside` read twice was materialized whole (out of
               -- memory at 1M persons, 2000MB)
               select unnest([node_l, node_r]) as node, rule, match_probability, strength from inside
           ),
           best as (
               -- the strongest link's rule, ties to the first rule by name; an arg_min keeps one value per
               -- node where an ordered aggregate buffers every link of a node (ran out of memory at 1M)
               select node, arg_min(rule, struct_pack(s := -strength, r := rule)) as matched_on,
                      max(match_probability) as match_probability
               from per_node group by node
           )
           select cl.node, cl.cluster, coalesce(b.matched_on, 'unmatched') as matched_on, b.match_probability
           from _cluster_labels as cl
           left join best as b using (node)"""
    )
