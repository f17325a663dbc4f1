"""The review queue is keyed: resolving again - the same run retried, or a recovery run after a run that
died once identity had committed - lists no item twice; warehouses from before the key are folded."""

from __future__ import annotations

import duckdb
import pytest

from ml.identity.config import IdentityConfig
from ml.identity.resolve import CATALOG, connect_with_warehouse, resolve_warehouse
from ml.identity.store import ensure_schema
from tests.ml.identity.fixtures import candidate, create_candidates

CONFIG = IdentityConfig(max_cluster_size=5)


def candidates() -> list[dict]:
    """Records that put one item of each kind in the queue: a mailbox shared by more records than a
    cluster may hold, a cluster too large (six ERP accounts naming one CRM customer) and an ERP account
    naming a CRM customer of another name; plus ordinary people."""
    rows = [
        candidate(f"erp:S{i:03d}", first_name_key="anna", last_name_key="berg", email_key="anna@berg.test")
        for i in range(8)
    ]
    rows += [
        candidate(
            f"erp:O{i:03d}", first_name_key="carl", last_name_key="dahl", phone_nsn=f"30{i}", ref_crm_customer_id="C1"
        )
        for i in range(6)
    ]
    rows.append(candidate("crm:C1", first_name_key="carl", last_name_key="dahl"))
    rows.append(candidate("erp:R001", first_name_key="zoe", last_name_key="ek", ref_crm_customer_id="C2"))
    rows.append(candidate("crm:C2", first_name_key="max", last_name_key="fors"))
    for i in range(10):
        email = f"p{i}@mail.test"
        rows.append(candidate(f"crm:P{i:03d}", first_name_key=f"pera{i}", last_name_key=f"p{i}", email_key=email))
        rows.append(candidate(f"erp:P{i:03d}", first_name_key=f"pera{i}", last_name_key=f"p{i}", email_key=email))
    return rows


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema intermediate")
        create_candidates(con, "intermediate.int_identity_candidates", candidates())
    return path


def queue(path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            """select review_key, kind, record_ids, customer_ids, detail, run_id, first_run_id, created_at,
                      last_seen_at
               from identity.review_queue order by review_key"""
        ).fetchall()


def count(path, table: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"select count(*) from identity.{table}").fetchall()[0][0]


def test_resolving_again_lists_no_review_item_twice(warehouse):
    resolve_warehouse(warehouse, CONFIG, "run-1")
    first = queue(warehouse)
    assert {r[1] for r in first} >= {"shared_email", "oversized_cluster", "reference_conflict"}
    assert len({r[0] for r in first}) == len(first)
    ledger = count(warehouse, "identity_ledger")

    resolve_warehouse(warehouse, CONFIG, "run-1")  # the step retried in the same run
    assert [r[:7] for r in queue(warehouse)] == [r[:7] for r in first]

    resolve_warehouse(warehouse, CONFIG, "run-2")  # a recovery run on the same records
    again = queue(warehouse)
    assert len(again) == len(first)
    # the same items, now last listed by run 2, first by run 1 (when it listed them)
    assert [r[:5] for r in again] == [r[:5] for r in first]
    assert {(r[5], r[6]) for r in again} == {("run-2", "run-1")}
    assert [r[7] for r in again] == [r[7] for r in first]
    assert all(r[8] > r[7] for r in again)
    # nothing merged or split by the recovery: the ledger gets nothing, the runs table one row per run
    assert count(warehouse, "identity_ledger") == ledger
    assert count(warehouse, "resolution_runs") == 2
    with duckdb.connect(str(warehouse), read_only=True) as con:  # the QA check's hint still lists the run's items
        assert con.execute("select count(*) from identity.review_queue where run_id = 'run-2'").fetchall()[0][0] == len(
            first
        )


def test_an_item_only_the_repeated_run_listed_goes_when_it_lists_it_no_more(warehouse):
    resolve_warehouse(warehouse, CONFIG, "run-1")
    with duckdb.connect(str(warehouse)) as con:
        # as if the earlier attempt of run 2 had listed an item the retry does not find
        con.execute(
            """insert into identity.review_queue by name
               select 'run-2' as run_id, now()::timestamp as created_at, 'bridge' as kind, ['crm:X'] as record_ids,
                      ['cus_x'] as customer_ids, 'gone' as detail, 'k-gone' as review_key, 'run-2' as first_run_id,
                      now()::timestamp as last_seen_at"""
        )
    resolve_warehouse(warehouse, CONFIG, "run-2")
    assert "k-gone" not in {r[0] for r in queue(warehouse)}
    assert {r[5] for r in queue(warehouse)} == {"run-2"}


def test_a_queue_from_before_the_key_is_folded_and_keyed(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema identity")
        con.execute(
            """create table identity.review_queue (
                   run_id varchar not null, created_at timestamp not null, kind varchar not null,
                   record_ids varchar[] not null, customer_ids varchar[] not null, detail varchar not null)"""
        )
        # an item listed by three runs (a recovery listed it again), one listed once
        con.execute(
            """insert into identity.review_queue values
               ('r1', '2025-01-01 10:00', 'shared_email', ['erp:A', 'erp:B'], ['cus_a'], '2 records share'),
               ('r2', '2025-01-02 10:00', 'shared_email', ['erp:A', 'erp:B'], ['cus_a'], '2 records share'),
               ('r3', '2025-01-03 10:00', 'shared_email', ['erp:A', 'erp:B'], ['cus_b'], '2 records share!'),
               ('r2', '2025-01-02 10:00', 'bridge', ['crm:C', 'erp:D'], ['cus_c', 'cus_d'], 'cut')"""
        )
    con = connect_with_warehouse(path)
    try:
        ensure_schema(con, CATALOG)
        ensure_schema(con, CATALOG)  # a second time: nothing left to fold
        rows = con.execute(
            """select kind, run_id, first_run_id, created_at::varchar, last_seen_at::varchar, customer_ids, detail
               from wh.identity.review_queue order by kind"""
        ).fetchall()
        assert rows == [
            ("bridge", "r2", "r2", "2025-01-02 10:00:00", "2025-01-02 10:00:00", ["cus_c", "cus_d"], "cut"),
            ("shared_email", "r3", "r1", "2025-01-01 10:00:00", "2025-01-03 10:00:00", ["cus_b"], "2 records share!"),
        ]
        with pytest.raises(duckdb.ConstraintException):  # the key is unique from now on
            con.execute(
                """insert into wh.identity.review_queue by name
                   select review_key, 'r4' as run_id, now()::timestamp as created_at, kind, record_ids, customer_ids,
                          detail from wh.identity.review_queue where kind = 'bridge'"""
            )
    finally:
        con.close()
