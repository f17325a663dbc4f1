"""Stable customer ids across runs: merges and splits decided deterministically and recorded.

Inputs (temp tables in the connection):
    identity_assignment_input(record_id, cluster, matched_on)   this run's clusters
    identity_previous(record_id, customer_id)                    the last applied run's assignment
    identity_taken_ids(customer_id)                              every id ever issued (live or retired)

Rules:
- a cluster with no previously known record gets `cus_` + 16 hex of md5(its smallest record id);
  should that id ever have been issued, md5(record id || ':' || run id) instead;
- every previous customer is *kept* by the cluster holding most of its records (ties: the cluster
  with the smallest record id);
- a cluster keeping several previous customers is a **merge**: the customer with most records here
  survives (ties: the smallest id), the others are retired;
- records of a previous customer that land in a cluster that does not keep it were **split** off.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class IdChanges:
    previous_customers: int
    customers: int
    new_customers: int
    merges: int
    splits: int

    @property
    def churn(self) -> float:
        """Merges + splits as a share of the previous run's customers (0 on the first run)."""
        return (self.merges + self.splits) / self.previous_customers if self.previous_customers else 0.0


ASSIGN_SQL = """
-- reviewers' decisions behind this run's links and cuts (ml/identity/overrides.py); empty without any
create temp table if not exists identity_override_notes (record_id varchar, note varchar);

create or replace temp table identity_overlap as
select n.cluster, p.customer_id, count(*) as records, min(n.record_id) as first_record,
    list(n.record_id order by n.record_id) as record_ids
from identity_assignment_input as n
inner join identity_previous as p using (record_id)
group by n.cluster, p.customer_id;

create or replace temp table identity_keepers as
select *, row_number() over (partition by customer_id order by records desc, first_record) = 1 as is_keeper
from identity_overlap;

create or replace temp table identity_survivors as
select cluster, customer_id
from identity_keepers
where is_keeper
qualify row_number() over (partition by cluster order by records desc, customer_id) = 1;

create or replace temp table identity_cluster_ids as
with clusters as (
    select cluster, min(record_id) as first_record, count(*) as size
    from identity_assignment_input group by cluster
),
fresh as (
    select c.cluster, c.first_record, c.size, 'cus_' || left(md5(c.first_record), 16) as plain_id
    from clusters as c anti join identity_survivors as s using (cluster)
)
select cluster, customer_id, size, false as is_new from identity_survivors
inner join clusters using (cluster)
union all
select f.cluster,
    case when t.customer_id is null then f.plain_id
         else 'cus_' || left(md5(f.first_record || ':' || $run_id), 16) end,
    f.size, true
from fresh as f
left join identity_taken_ids as t on t.customer_id = f.plain_id;

create or replace temp table identity_assignment as
select n.record_id, i.customer_id, n.matched_on, i.size as cluster_size
from identity_assignment_input as n inner join identity_cluster_ids as i using (cluster);

create or replace temp table identity_changes as
-- merges: a previous customer kept by this cluster but not its survivor is retired into it
select 'merge' as event_type, i.customer_id, k.customer_id as previous_customer_id, k.records as record_count,
    k.record_ids,
    'records of ' || k.customer_id || ' now linked to ' || i.customer_id || ' (' ||
        (select string_agg(distinct a.matched_on, ', ' order by a.matched_on)
         from identity_assignment_input as a where list_contains(k.record_ids, a.record_id)) || ')'
        || coalesce('; ' || (select string_agg(distinct o.note, '; ' order by o.note)
                             from identity_override_notes as o where list_contains(k.record_ids, o.record_id)), '')
        as reason
from identity_keepers as k
inner join identity_cluster_ids as i using (cluster)
where k.is_keeper and k.customer_id <> i.customer_id
union all
-- splits: records that left their previous customer for a cluster that does not keep it
select 'split', i.customer_id, k.customer_id, k.records, k.record_ids,
    'records of ' || k.customer_id || ' no longer linked to it; now ' || i.customer_id
        || coalesce('; ' || (select string_agg(distinct o.note, '; ' order by o.note)
                             from identity_override_notes as o where list_contains(k.record_ids, o.record_id)), '')
from identity_keepers as k
inner join identity_cluster_ids as i using (cluster)
where not k.is_keeper;
"""


def assign_stable_ids(con: duckdb.DuckDBPyConnection, run_id: str) -> IdChanges:
    """Create `identity_assignment(record_id, customer_id, matched_on, cluster_size)` and
    `identity_changes(event_type, customer_id, previous_customer_id, record_count, record_ids, reason)`."""
    for statement in ASSIGN_SQL.split(";\n"):
        if statement.strip():
            con.execute(statement, {"run_id": run_id} if "$run_id" in statement else None)
    row = con.execute(
        """select
               (select count(distinct customer_id) from identity_previous),
               (select count(*) from identity_cluster_ids),
               (select count(*) from identity_cluster_ids where is_new),
               (select count(*) from identity_changes where event_type = 'merge'),
               (select count(*) from identity_changes where event_type = 'split')"""
    ).fetchall()[0]
    return IdChanges(*(int(v) for v in row))
