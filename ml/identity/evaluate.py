"""Accuracy of identity resolution against the demo generator's ground truth.

Pairwise: every pair of records placed in one customer is a predicted match; a true match is a
pair of records of one person. Precision = correct predicted pairs / predicted pairs, recall =
correct predicted pairs / true pairs. Counted with group-by sums (n choose 2), never by
enumerating pairs, so it is cheap at any scale.

Cluster level: the share of true persons whose records form exactly one customer, with nothing
else in it (exact cluster match), and the counts of split persons and mixed customers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class IdentityAccuracy:
    records_evaluated: int
    truth_records_not_candidates: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float
    persons: int
    customers: int
    exact_cluster_match_rate: float
    persons_split: int
    customers_mixed: int

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"pairwise precision {self.precision:.4f}  recall {self.recall:.4f}  F1 {self.f1:.4f}  "
            f"({self.correct_pairs:,} of {self.predicted_pairs:,} predicted pairs correct; "
            f"{self.true_pairs:,} true pairs)\n"
            f"cluster level: {self.exact_cluster_match_rate:.2%} of {self.persons:,} persons resolved exactly "
            f"into {self.customers:,} customers; {self.persons_split:,} persons split, "
            f"{self.customers_mixed:,} customers mixed\n"
            f"records evaluated {self.records_evaluated:,}; truth records with no identifying key (not candidates) "
            f"{self.truth_records_not_candidates:,}"
        )


def truth_by_record(con: duckdb.DuckDBPyConnection, truth_dir: Path, events_table: str) -> None:
    """Temp table `identity_truth(record_id, person_id)` in the candidates' record_id form.
    Identified events are truth per event; identity works per device (anonymous_id), whose person
    is the person of its events."""
    path = str(Path(truth_dir) / "source_records.parquet").replace("'", "''")
    con.execute(
        f"""create or replace temp table identity_truth as
            with t as (select * from read_parquet('{path}'))
            select
                case source_table
                    when 'crm.customers' then 'crm:' when 'erp.accounts' then 'erp:' else 'support:'
                end || source_record_id as record_id,
                person_id
            from t where source_table <> 'events.events'
            union all
            select 'events:' || e.anonymous_id, mode(t.person_id)
            from t inner join {events_table} as e on e.event_id = t.source_record_id
            where t.source_table = 'events.events'
            group by e.anonymous_id"""
    )


def evaluate(con: duckdb.DuckDBPyConnection, assignments: str, truth_dir: Path, events_table: str) -> IdentityAccuracy:
    """Compare `assignments(record_id, customer_id)` with the truth in `truth_dir`."""
    truth_by_record(con, truth_dir, events_table)
    row = con.execute(
        f"""
        with joined as (
            select a.customer_id, t.person_id
            from {assignments} as a inner join identity_truth as t using (record_id)
        ),
        cells as (select customer_id, person_id, count(*) as n from joined group by all),
        per_customer as (select customer_id, sum(n) as n, count(*) as persons from cells group by customer_id),
        per_person as (select person_id, sum(n) as n, count(*) as customers from cells group by person_id)
        select
            (select count(*) from joined),
            (select count(*) from identity_truth anti join {assignments} using (record_id)),
            (select coalesce(sum(n * (n - 1) // 2), 0) from per_person),
            (select coalesce(sum(n * (n - 1) // 2), 0) from per_customer),
            (select coalesce(sum(n * (n - 1) // 2), 0) from cells),
            (select count(*) from per_person),
            (select count(*) from per_customer),
            (select count(*) from cells as c
                inner join per_person as p using (person_id)
                inner join per_customer as k using (customer_id)
                where p.customers = 1 and k.persons = 1),
            (select count(*) from per_person where customers > 1),
            (select count(*) from per_customer where persons > 1)
        """
    ).fetchall()[0]
    evaluated, missing, true_pairs, predicted, correct, persons, customers, exact, split, mixed = (int(v) for v in row)
    precision = correct / predicted if predicted else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return IdentityAccuracy(
        records_evaluated=evaluated,
        truth_records_not_candidates=missing,
        true_pairs=true_pairs,
        predicted_pairs=predicted,
        correct_pairs=correct,
        precision=precision,
        recall=recall,
        f1=f1,
        persons=persons,
        customers=customers,
        exact_cluster_match_rate=exact / persons if persons else 1.0,
        persons_split=split,
        customers_mixed=mixed,
    )
