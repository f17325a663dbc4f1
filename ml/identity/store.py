"""The `identity` schema: where identity resolution keeps its state between runs.

    identity.customer_source_records   one row per candidate record: its customer (current state)
    identity.match_edges               the accepted links behind the current state (why two records are one)
    identity.identity_ledger           every merge and split, with its reason and run (append-only)
    identity.customer_id_redirects     retired customer id -> the id that carries the person now
    identity.review_queue              bridges cut, oversized clusters, refused references, shared keys:
                                       one row per item, keyed (a repeat refreshes, never re-lists)
    identity.resolution_runs           one row per run: counts, churn, QA figures, the Splink model

dbt reads the first table as source `identity.customer_source_records`. The caller's connection has
the warehouse attached as catalog `catalog`; identity's working tables are temp tables in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from ml.identity.clustering import ReviewItem
from ml.identity.overrides import OVERRIDES_TABLE
from ml.identity.stable_ids import IdChanges
from warehouse.connections import transaction
from warehouse.tables import ensure_tables


@dataclass(frozen=True)
class IdentityQa:
    """The figures identity QA checks judge (also stored in `identity.resolution_runs`)."""

    records: int
    customers: int
    bridges: int
    oversized_clusters: int
    reference_conflicts: int
    shared_keys: int
    vetoed_pairs: int
    multi_source_share: float
    max_cluster_size: int
    cluster_size_distribution: dict[str, int]


# The identity schema's tables (defined in warehouse/tables.py), in the order they are created.
IDENTITY_TABLES = (
    "identity.customer_source_records",
    "identity.match_edges",
    "identity.identity_ledger",
    "identity.customer_id_redirects",
    "identity.review_queue",
    "identity.resolution_runs",
)


# The key of a review item: its kind and its record ids as listed (sorted for a group of records; the
# record and the one it names for a refused reference). The same situation found again has the same key.
REVIEW_KEY = "md5(kind || ':' || array_to_string(record_ids, ','))"


def ensure_schema(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    ensure_tables(con, *IDENTITY_TABLES, catalog=catalog)
    key_review_queue(con, catalog)


def key_review_queue(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """Make `review_key` the unique key of `identity.review_queue`.

    Warehouses from before the key hold one row per item and run that listed it (a recovery run listed
    every item again): their rows are folded into one per key (in one transaction) - first listed by the
    earliest run (`first_run_id`, `created_at`), last by the latest (`run_id`, `last_seen_at`, with that
    run's customers and detail). Then a unique index on the key. Cheap when done: one count."""
    queue = f"{catalog}.identity.review_queue"
    (unkeyed,) = con.execute(f"select count(*) from {queue} where review_key is null").fetchall()[0]
    if unkeyed:
        with transaction(con):
            con.execute(
                f"""create or replace temp table identity_review_fold as
                    with keyed as (
                        select coalesce(review_key, {REVIEW_KEY}) as review_key, run_id, created_at, kind,
                               record_ids, customer_ids, detail, coalesce(first_run_id, run_id) as first_run_id,
                               coalesce(last_seen_at, created_at) as last_seen_at
                        from {queue}
                    )
                    select review_key, arg_max(run_id, last_seen_at) as run_id, min(created_at) as created_at,
                           any_value(kind) as kind, any_value(record_ids) as record_ids,
                           arg_max(customer_ids, last_seen_at) as customer_ids, arg_max(detail, last_seen_at) as detail,
                           arg_min(first_run_id, created_at) as first_run_id, max(last_seen_at) as last_seen_at
                    from keyed group by review_key"""
            )
            con.execute(f"delete from {queue}")
            con.execute(f"insert into {queue} by name select * from identity_review_fold")
            con.execute("drop table identity_review_fold")
    con.execute(f"create unique index if not exists review_queue_key on {queue} (review_key)")


def load_previous(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """Temp tables `identity_previous` (last applied assignment) and `identity_taken_ids`."""
    con.execute(
        f"create or replace temp table identity_previous as "
        f"select record_id, customer_id from {catalog}.identity.customer_source_records"
    )
    con.execute(
        f"""create or replace temp table identity_taken_ids as
            select customer_id from {catalog}.identity.customer_source_records
            union select retired_customer_id from {catalog}.identity.customer_id_redirects
            union select customer_id from {catalog}.identity.identity_ledger"""
    )


def run_report(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    """What identity run `run_id` did, for a reader (the `segments run` summary): records, customers,
    merges and splits, the linkage (comparisons, blocking, threshold, guards, overrides, unlinked) and
    the review items waiting for a decision. None when that run resolved nothing (or the warehouse has
    no identity schema yet)."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'identity' and table_name = 'resolution_runs'"
    ).fetchall()[0][0]
    if not exists:
        return None
    rows = con.execute(
        """select is_applied, records, customers, merges, splits, linkage from identity.resolution_runs
           where run_id = ?""",
        [run_id],
    ).fetchall()
    if not rows:
        return None
    applied, records, customers, merges, splits, linkage = rows[0]
    waiting = con.execute(
        "select kind, count(*) from identity.review_queue where decision is null group by kind order by kind"
    ).fetchall()
    return {
        "applied": applied,
        "records": records,
        "customers": customers,
        "merges": merges,
        "splits": splits,
        "linkage": json.loads(linkage or "{}"),
        "review_waiting": dict(waiting),
    }


def previous_model(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, Any] | None:
    """The Splink model of the latest applied run that trained or reused one (None if none)."""
    rows = con.execute(
        f"""select splink_model from {catalog}.identity.resolution_runs
            where is_applied and json_array_length(splink_model -> 'comparisons') > 0
            order by resolved_at desc limit 1"""
    ).fetchall()
    return json.loads(rows[0][0]) if rows else None


# What a record that stayed alone carried: the first class it falls in, strongest evidence first.
EVIDENCE_CLASSES = """
    case
        when r.given_name_key is null and r.last_name_key is null then 'no name'
        when r.email_key is not null or r.phone_nsn is not null then 'name and e-mail or phone'
        when r.birth_date is not null then 'name and birth date'
        when r.postal_code_key is not null or r.street_key is not null or r.city_key is not null
            then 'name and address'
        else 'name only'
    end"""


def count_unlinked(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, Any]:
    """What stayed unlinked, counted and explained (needs `identity_assignment`, `identity_records`):

    - `single_record_customers`: candidates that are a customer on their own, by source system and the
      evidence they carried (a name alone links nobody; a name with a birth date or an address links
      where another record agrees);
    - `not_candidates`: records identity never sees because they carry nothing to resolve on: support
      tickets with no e-mail, phone or account (a requester's name alone), and devices that never logged
      in or gave an e-mail (anonymous browsing)."""
    alone = con.execute(
        f"""select r.source_system, {EVIDENCE_CLASSES} as evidence, count(*)
            from identity_assignment as a
            inner join identity_records as r using (record_id)
            where a.cluster_size = 1
            group by all order by 1, 3 desc"""
    ).fetchall()
    by_source: dict[str, dict[str, int]] = {}
    for source, evidence, n in alone:
        by_source.setdefault(source, {})[evidence] = int(n)
    not_candidates: dict[str, int] = {}
    tables = {
        t
        for (t,) in con.execute(
            f"""select table_schema || '.' || table_name from information_schema.tables
                where table_catalog = '{catalog}' and table_schema = 'staging'"""
        ).fetchall()
    }
    if "staging.stg_support__tickets" in tables:
        not_candidates["support tickets with only a requester name (no e-mail, phone or account)"] = int(
            con.execute(
                f"""select count(*) from {catalog}.staging.stg_support__tickets
                    where requester_email_normalized is null and requester_phone_normalized is null
                        and erp_account_id is null"""
            ).fetchall()[0][0]
        )
    if "staging.stg_events__events" in tables:
        not_candidates["devices never identified (no login, no e-mail)"] = int(
            con.execute(
                f"""select count(*) from (
                        select anonymous_id from {catalog}.staging.stg_events__events group by anonymous_id
                        having count(crm_customer_id) = 0 and count(email_normalized) = 0)"""
            ).fetchall()[0][0]
        )
    return {
        "single_record_customers": sum(sum(v.values()) for v in by_source.values()),
        "single_record_customers_by_source": by_source,
        "not_candidates": not_candidates,
    }


def measure_qa(con: duckdb.DuckDBPyConnection, reviews: list[ReviewItem]) -> IdentityQa:
    """QA figures of this run's assignment (temp table `identity_assignment`)."""
    sizes = con.execute(
        """select case when cluster_size >= 10 then '10+' else cluster_size::varchar end as size,
                  count(distinct customer_id)
           from identity_assignment group by all order by min(cluster_size)"""
    ).fetchall()
    row = con.execute(
        """with per_customer as (
               select customer_id, count(distinct split_part(record_id, ':', 1)) as systems
               from identity_assignment group by customer_id
           )
           select
               (select count(*) from identity_assignment),
               (select count(*) from per_customer),
               (select coalesce(avg((systems >= 2)::int), 0) from per_customer),
               (select coalesce(max(cluster_size), 0) from identity_assignment),
               (select count(*) from identity_reference_conflicts),
               (select count(*) from identity_shared_keys),
               (select count(*) from identity_vetoed_pairs)"""
    ).fetchall()[0]
    records, customers, multi, biggest, conflicts, shared, vetoed = row
    return IdentityQa(
        records=int(records),
        customers=int(customers),
        bridges=sum(r.kind == "bridge" for r in reviews),
        oversized_clusters=sum(r.kind == "oversized_cluster" for r in reviews),
        reference_conflicts=int(conflicts),
        shared_keys=int(shared),
        vetoed_pairs=int(vetoed),
        multi_source_share=float(multi),
        max_cluster_size=int(biggest),
        cluster_size_distribution={str(k): int(v) for k, v in sizes},
    )


def write_run(
    con: duckdb.DuckDBPyConnection,
    catalog: str,
    *,
    run_id: str,
    applied: bool,
    changes: IdChanges,
    qa: IdentityQa,
    reviews: list[ReviewItem],
    edges_by_rule: dict[str, int],
    timings: dict[str, float],
    config: dict[str, Any],
    splink_model: dict[str, Any],
    match_threshold: float | None = None,
    linkage: dict[str, Any] | None = None,
) -> None:
    """Persist one run in a single transaction. When `applied` is false (the churn bound was
    exceeded) only the run, its ledger rows (is_applied = false) and its review items are written:
    the current assignment stays as it was.

    A repeat writes nothing twice: the same run replaces its run record and ledger rows; any run
    (the same, or a recovery run after one that died once this step had committed) refreshes the review
    items it lists again instead of adding them (`_write_reviews`); the current assignment, edges and
    redirects are state, replaced or keyed. A new run on unchanged records finds no merge or split, so
    the ledger gets nothing from it; what a dead run committed keeps its run id."""
    c = catalog
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction(con):
        con.execute(f"delete from {c}.identity.identity_ledger where run_id = ?", [run_id])
        con.execute(f"delete from {c}.identity.resolution_runs where run_id = ?", [run_id])
        _write_reviews(con, c, run_id, now, reviews)
        con.execute(
            f"""insert into {c}.identity.identity_ledger
                select ?, ?, event_type, customer_id, previous_customer_id, record_count, record_ids, reason, ?
                from identity_changes order by event_type, customer_id, previous_customer_id""",
            [run_id, now, applied],
        )
        if applied:
            con.execute(f"delete from {c}.identity.customer_source_records")
            con.execute(
                f"""insert into {c}.identity.customer_source_records
                    select a.record_id, r.source_system, r.source_record_id, a.customer_id, a.matched_on,
                        cl.match_probability, a.cluster_size, ?, ?
                    from identity_assignment as a
                    inner join identity_records as r using (record_id)
                    inner join identity_clusters as cl using (node)""",
                [run_id, now],
            )
            con.execute(f"delete from {c}.identity.match_edges")
            con.execute(
                f"""insert into {c}.identity.match_edges
                    select l.record_id, r.record_id, e.rule, e.match_probability, ?
                    from identity_edges as e
                    inner join identity_records as l on l.node = e.node_l
                    inner join identity_records as r on r.node = e.node_r
                    inner join identity_assignment as al on al.record_id = l.record_id
                    inner join identity_assignment as ar on ar.record_id = r.record_id
                    where al.customer_id = ar.customer_id""",
                [run_id],
            )
            # retired ids point at the id that carries the person now (chains collapse)
            con.execute(
                f"""insert or replace into {c}.identity.customer_id_redirects
                    select previous_customer_id, customer_id, ? from identity_changes where event_type = 'merge'""",
                [run_id],
            )
            con.execute(
                f"""update {c}.identity.customer_id_redirects as d set customer_id = m.customer_id
                    from identity_changes as m
                    where m.event_type = 'merge' and d.customer_id = m.previous_customer_id"""
            )
        con.execute(
            f"""insert into {c}.identity.resolution_runs (
                    run_id, resolved_at, is_applied, records, customers, previous_customers, new_customers, merges,
                    splits, churn, bridges, oversized_clusters, reference_conflicts, shared_keys, vetoed_pairs,
                    multi_source_share, max_cluster_size, cluster_size_distribution, edges_by_rule, timings, config,
                    splink_model, match_threshold, linkage)
                values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                run_id,
                now,
                applied,
                qa.records,
                qa.customers,
                changes.previous_customers,
                changes.new_customers,
                changes.merges,
                changes.splits,
                changes.churn,
                qa.bridges,
                qa.oversized_clusters,
                qa.reference_conflicts,
                qa.shared_keys,
                qa.vetoed_pairs,
                qa.multi_source_share,
                qa.max_cluster_size,
                json.dumps(qa.cluster_size_distribution),
                json.dumps(edges_by_rule),
                json.dumps({k: round(v, 3) for k, v in timings.items()}),
                json.dumps(config),
                json.dumps(splink_model),
                match_threshold,
                json.dumps(linkage or {}),
            ],
        )


def _write_reviews(
    con: duckdb.DuckDBPyConnection, c: str, run_id: str, now: datetime, reviews: list[ReviewItem]
) -> None:
    """Review items from the guardrails plus refused references and shared keys found in SQL, keyed
    (`REVIEW_KEY`): an item already in the queue gets this run as the latest that listed it (`run_id`,
    `last_seen_at`) and this run's customers and detail, and keeps when and by which run it was first
    listed; a new item is added. A repeat of the same run drops the items that only it had listed and that
    it lists no more; an item listed first by an earlier run and by an earlier attempt of this run keeps
    this run as the latest that listed it. Items no run lists any more stay, with the run that last did."""
    con.execute(
        """create or replace temp table identity_review_items (
               kind varchar, record_ids varchar[], customer_ids varchar[], detail varchar)"""
    )
    if reviews:
        import pyarrow as pa

        con.register(
            "_reviews",
            pa.table(
                {
                    "review": list(range(len(reviews))),
                    "kind": [r.kind for r in reviews],
                    "detail": [r.detail for r in reviews],
                    "nodes": [r.record_nodes for r in reviews],
                }
            ),
        )
        try:
            con.execute(
                """insert into identity_review_items
                    select any_value(v.kind), list(r.record_id order by r.record_id),
                        list(distinct a.customer_id order by a.customer_id), any_value(v.detail)
                    from (select review, kind, detail, unnest(nodes) as node from _reviews) as v
                    inner join identity_records as r using (node)
                    inner join identity_assignment as a using (record_id)
                    group by v.review order by v.review"""
            )
        finally:
            con.unregister("_reviews")
    con.execute(
        """insert into identity_review_items
            select 'reference_conflict', [rc.record_id, rc.referenced_record_id],
                list_distinct([a.customer_id, b.customer_id]),
                rc.record_id || ' names ' || rc.referenced_record_id || ' but their names disagree: not linked'
            from identity_reference_conflicts as rc
            inner join identity_assignment as a on a.record_id = rc.record_id
            inner join identity_assignment as b on b.record_id = rc.referenced_record_id
            union all
            select 'shared_' || s.field, list(r.record_id order by r.record_id),
                list(distinct a.customer_id order by a.customer_id),
                any_value(s.records) || ' records share this ' || s.field
                    || ': treated as a shared address, not an identity'
            from identity_shared_keys as s
            inner join identity_records as r
                on (s.field = 'email' and r.email_key = s.value) or (s.field = 'phone' and r.phone_nsn = s.value)
            inner join identity_assignment as a using (record_id)
            group by s.field, s.value"""
    )
    # one row per key: two items of one run with the same kind and records (e.g. two mailboxes shared by the
    # same records) are one item
    con.execute(
        f"""create or replace temp table identity_review_keyed as
            select * from (select {REVIEW_KEY} as review_key, * from identity_review_items)
            qualify row_number() over (partition by review_key order by detail, customer_ids) = 1"""
    )
    con.execute(
        f"""delete from {c}.identity.review_queue
            where first_run_id = ? and review_key not in (select review_key from identity_review_keyed)""",
        [run_id],
    )
    con.execute(
        f"""insert into {c}.identity.review_queue
                (run_id, created_at, kind, record_ids, customer_ids, detail, review_key, first_run_id, last_seen_at)
            select ?, ?, kind, record_ids, customer_ids, detail, review_key, ?, ?
            from identity_review_keyed
            on conflict (review_key) do update set
                run_id = excluded.run_id, last_seen_at = excluded.last_seen_at,
                customer_ids = excluded.customer_ids, detail = excluded.detail""",
        [run_id, now, run_id, now],
    )
    con.execute("drop table identity_review_items")
    con.execute("drop table identity_review_keyed")
    # what reviewers decided (the overrides file as this run read it): the rest waits
    con.execute(
        f"""update {c}.identity.review_queue set decision = null, decided_by = null, decision_reason = null
            where decision is not null"""
    )
    con.execute(
        f"""update {c}.identity.review_queue as q
            set decision = o.decision, decided_by = o.decided_by, decision_reason = o.reason
            from {OVERRIDES_TABLE} as o
            where len(q.record_ids) = 2
                and list_sort(q.record_ids)
                    = [least(o.record_id_l, o.record_id_r), greatest(o.record_id_l, o.record_id_r)]"""
    )
