"""Stable customer ids: unchanged on re-runs and new records, deterministic on merges and splits."""

from __future__ import annotations

import hashlib

import duckdb
import pandas as pd
import pytest

from ml.identity.stable_ids import assign_stable_ids


def plain_id(record_id: str) -> str:
    return "cus_" + hashlib.md5(record_id.encode()).hexdigest()[:16]


def run(con, clusters: dict[str, int], previous: dict[str, str], taken: set[str] | None = None, run_id: str = "r2"):
    con.register(
        "_in", pd.DataFrame({"record_id": list(clusters), "cluster": list(clusters.values()), "matched_on": "email"})
    )
    con.execute("create or replace temp table identity_assignment_input as select * from _in")
    con.register(
        "_prev", pd.DataFrame({"record_id": list(previous), "customer_id": list(previous.values())}, dtype="str")
    )
    con.execute("create or replace temp table identity_previous as select * from _prev")
    ids = sorted(set(previous.values()) | (taken or set()))
    con.register("_taken", pd.DataFrame({"customer_id": ids}, dtype="str"))
    con.execute("create or replace temp table identity_taken_ids as select * from _taken")
    changes = assign_stable_ids(con, run_id)
    assignment = dict(con.execute("select record_id, customer_id from identity_assignment").fetchall())
    ledger = con.execute(
        "select event_type, customer_id, previous_customer_id, record_count, record_ids "
        "from identity_changes order by all"
    ).fetchall()
    return changes, assignment, ledger


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def test_first_run_ids_derive_from_the_smallest_record_id(con):
    changes, ids, ledger = run(con, {"crm:C2": 0, "erp:A1": 0, "crm:C9": 1}, {})
    assert ids == {"crm:C2": plain_id("crm:C2"), "erp:A1": plain_id("crm:C2"), "crm:C9": plain_id("crm:C9")}
    assert (changes.new_customers, changes.merges, changes.splits, changes.churn) == (2, 0, 0, 0.0)
    assert ledger == []


def test_new_records_of_existing_people_keep_their_ids(con):
    previous = {"crm:C2": "cus_anna", "erp:A1": "cus_anna", "crm:C9": "cus_ben"}
    # a new ticket joins Anna; a record sorting before hers must not change her id
    _, ids, ledger = run(con, {"crm:C2": 7, "erp:A1": 7, "crm:C1": 7, "support:T1": 7, "crm:C9": 3}, previous)
    assert {ids[r] for r in ("crm:C2", "erp:A1", "crm:C1", "support:T1")} == {"cus_anna"}
    assert ids["crm:C9"] == "cus_ben"
    assert ledger == []


def test_merge_keeps_the_larger_customer_and_retires_the_other(con):
    previous = {"crm:C1": "cus_b", "erp:A1": "cus_b", "crm:C2": "cus_a"}
    changes, ids, ledger = run(con, {"crm:C1": 0, "erp:A1": 0, "crm:C2": 0}, previous)
    assert set(ids.values()) == {"cus_b"}  # two records beat one, whatever the ids sort like
    assert ledger == [("merge", "cus_b", "cus_a", 1, ["crm:C2"])]
    assert changes.merges == 1 and changes.churn == pytest.approx(0.5)


def test_merge_tie_is_broken_by_the_smaller_id(con):
    _, ids, ledger = run(con, {"crm:C1": 0, "crm:C2": 0}, {"crm:C1": "cus_z", "crm:C2": "cus_a"})
    assert set(ids.values()) == {"cus_a"}
    assert [row[:3] for row in ledger] == [("merge", "cus_a", "cus_z")]


def test_split_keeps_the_id_with_the_majority_and_records_the_rest(con):
    previous = {"crm:C1": "cus_a", "erp:A1": "cus_a", "events:d1": "cus_a"}
    changes, ids, ledger = run(con, {"crm:C1": 0, "erp:A1": 0, "events:d1": 1}, previous)
    assert ids["crm:C1"] == ids["erp:A1"] == "cus_a"
    assert ids["events:d1"] == plain_id("events:d1")
    assert ledger == [("split", plain_id("events:d1"), "cus_a", 1, ["events:d1"])]
    assert changes.splits == 1


def test_a_retired_id_is_never_issued_again(con):
    # crm:C1 once was the smallest record of a customer whose id was retired: its plain id is taken
    _, ids, _ = run(con, {"crm:C1": 0}, {}, taken={plain_id("crm:C1")}, run_id="run-7")
    expected = "cus_" + hashlib.md5(b"crm:C1:run-7").hexdigest()[:16]
    assert ids == {"crm:C1": expected}
