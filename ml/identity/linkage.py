"""Identity resolution end to end: candidate records in, one cluster label per record out.

    candidates ─┬─ deterministic rules (rules.py) ─────────────┐
                └─ profiles ── Splink (probabilistic.py) ──────┴─ name guard ─ clusters + guardrails

Everything runs in one DuckDB connection (the caller's). Python touches only the graph arrays
(scipy connected components) and the few suspicious components.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ml.identity.clustering import RULE_STRENGTH, ClusterResult, ReviewItem, components, resolve_clusters
from ml.identity.config import IdentityConfig
from ml.identity.probabilistic import PROFILES_TABLE, link_profiles
from ml.identity.rules import SHARED_KEYS_SQL, deterministic_edges_sql, records_conflict

# Fields Splink compares; records equal on all of them (and identifying) are one profile.
PROFILE_FIELDS = (
    "given_name_key",
    "first_name_key",
    "last_name_key",
    "email_key",
    "phone_nsn",
    "postal_code_key",
    "street_key",
    "city_key",
    "birth_date",
    "country",
)


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
                    r.postal_code_key, r.street_key, r.city_key, r.birth_date, r.country
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
            select min(node) as unique_id, {", ".join(f"any_value({c}) as {c}" for c in PROFILE_FIELDS)}
            from identity_profile_members
            group by profile_key"""
    )
    con.execute(
        """create or replace temp table identity_profile_edges as
           select p.unique_id as node_l, m.node as node_r, 'identical_profile' as rule
           from identity_profile_members as m
           inner join (select profile_key, min(node) as unique_id
                       from identity_profile_members group by profile_key) as p
               using (profile_key)
           where m.node <> p.unique_id"""
    )


def collect_edges(con: duckdb.DuckDBPyConnection, config: IdentityConfig) -> None:
    """`identity_edges(node_l, node_r, rule, match_probability, strength)`: every accepted link.
    Splink pairs between records that contradict each other are vetoed (kept in
    `identity_vetoed_pairs` for review statistics)."""
    conflict = records_conflict("l", "r", config)
    con.execute(
        f"""create or replace temp table identity_vetoed_pairs as
            select e.unique_id_l as node_l, e.unique_id_r as node_r, e.match_probability
            from identity_splink_edges as e
            inner join identity_records as l on l.node = e.unique_id_l
            inner join identity_records as r on r.node = e.unique_id_r
            where {conflict}"""
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


def conflicts_by_component(
    con: duckdb.DuckDBPyConnection, labels: np.ndarray, config: IdentityConfig
) -> dict[int, list[tuple[int, int]]]:
    """Pairs of contradicting records per component. Compares distinct name/birth-date variants
    per component first (a handful per person), so the cost stays linear in records."""
    con.register("_component_labels", pa.table({"node": np.arange(len(labels)), "component": labels}))
    conflict = records_conflict("l", "r", config)
    try:
        rows = con.execute(
            f"""
            with named as (
                select c.component, r.node, r.given_name_key, r.first_name_key, r.birth_date
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
                    component, given_name_key, first_name_key, birth_date, list(node) as nodes,
                    row_number() over () as variant
                from named semi join multi using (component)
                group by component, given_name_key, first_name_key, birth_date
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


def link_records(
    con: duckdb.DuckDBPyConnection,
    config: IdentityConfig,
    candidates_table: str = "intermediate.int_identity_candidates",
    previous_model: dict[str, Any] | None = None,
) -> LinkageResult:
    """Resolve the candidates into clusters; leaves `identity_clusters` and the review items.
    `previous_model` (a Splink model dict) scores when this data is too small to train on."""
    timings: dict[str, float] = {}
    t = time.monotonic()
    n = load_records(con, candidates_table)
    con.execute(SHARED_KEYS_SQL.format(limit=int(config.max_cluster_size)))
    con.execute(deterministic_edges_sql(config))
    build_profiles(con)
    timings["rules"] = time.monotonic() - t

    t = time.monotonic()
    prob = link_profiles(con, config, previous_model)
    timings["splink"] = time.monotonic() - t

    t = time.monotonic()
    collect_edges(con, config)
    edges = con.execute("select node_l, node_r, strength from identity_edges").fetchnumpy()
    left = np.asarray(edges["node_l"], dtype=np.int64)
    right = np.asarray(edges["node_r"], dtype=np.int64)
    strength = np.asarray(edges["strength"], dtype=np.float64)
    initial = components(n, left, right)
    conflicts = conflicts_by_component(con, initial, config)
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
    return LinkageResult(n, result.reviews, prob.model, edges_by_rule, timings, prob.notes)


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
               select node_l as node, rule, match_probability, strength from inside
               union all
               select node_r, rule, match_probability, strength from inside
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
