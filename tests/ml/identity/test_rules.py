"""Deterministic identity rules and their guards, on a real DuckDB connection."""

from __future__ import annotations

import duckdb
import pytest

from ml.identity.config import IdentityConfig
from ml.identity.linkage import load_records
from ml.identity.rules import (
    SHARED_KEYS_SQL,
    Guards,
    deterministic_edges_sql,
    given_names_compatible,
    measure_guards,
    records_conflict,
)
from tests.ml.identity.fixtures import candidate, create_candidates

CONFIG = IdentityConfig()


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


@pytest.mark.parametrize(
    ("left", "right", "compatible"),
    [
        (("robert", "robert", "smith"), ("bob", "robert", "smith"), True),  # nickname resolved upstream
        (("ute", "ute", "bauer"), ("ue", "ue", "bauer"), True),  # one dropped letter
        (("katharina", "katharina", None), ("ktharina", "ktharina", None), True),
        ((None, None, "smith"), ("anna", "anna", "smith"), True),  # a nameless record contradicts nobody
        (("j", "j", "smith"), ("john", "john", "smith"), True),  # an initial
        (("smith", "smith", "john"), ("john", "john", "smith"), True),  # given name and surname swapped
        (("anna", "anna", "smith"), ("ben", "ben", "smith"), False),  # a household, not a person
        (("thomas", "thomas", "meyer"), ("laura", "laura", "meyer"), False),
        (("j", "j", "smith"), ("anna", "anna", "smith"), False),  # another initial
    ],
)
def test_given_name_compatibility(con, left, right, compatible):
    sql = given_names_compatible("l", "r", CONFIG)
    got = con.execute(
        f"""select {sql} from (select ? as first_name_key, ? as given_name_key, ? as last_name_key) as l,
                              (select ? as first_name_key, ? as given_name_key, ? as last_name_key) as r""",
        [*left, *right],
    ).fetchall()[0][0]
    assert got is compatible


@pytest.mark.parametrize(
    ("other", "conflict"),
    [
        ("1980-03-14", False),  # the same date
        ("1980-03-15", False),  # one typed digit
        ("1908-03-14", False),  # two digits swapped
        ("1980-04-03", True),  # 3 April: not day and month swapped (14 March), a different date
        ("1990-05-05", True),
        (None, False),  # a missing date contradicts nothing
    ],
)
def test_birth_dates_conflict_unless_one_date_typed_twice(con, other, conflict):
    sql = records_conflict("l", "r", CONFIG, Guards(given_names=False, birth_dates=True))
    got = con.execute(
        f"""select {sql} from (select date '1980-03-14' as birth_date) as l,
                              (select cast(? as date) as birth_date) as r""",
        [other],
    ).fetchall()[0][0]
    assert got is conflict


def test_day_and_month_swapped_is_one_date(con):
    sql = records_conflict("l", "r", CONFIG, Guards(given_names=False, birth_dates=True))
    got = con.execute(
        f"select {sql} from (select date '1980-03-04' as birth_date) as l, "
        "(select date '1980-04-03' as birth_date) as r"
    ).fetchall()[0][0]
    assert got is False


def test_guards_off_contradict_nothing(con):
    sql = records_conflict("l", "r", CONFIG, Guards(given_names=False, birth_dates=False))
    assert sql == "false"


def test_guards_follow_the_data(con):
    """Birth dates typed with errors in a third of duplicates turn the birth-date guard off; given
    names that agree keep theirs on."""
    rows = []
    for i in range(40):
        dob_b = f"19{50 + i % 40:02d}-0{1 + i % 9}-1{i % 10}" if i % 3 == 0 else f"19{50 + i % 40:02d}-01-01"
        rows += [
            candidate(
                f"crm:A{i}",
                first_name_key=f"anna{i}",
                last_name_key=f"smith{i}",
                email_key=f"a{i}@x.de",
                birth_date=f"19{50 + i % 40:02d}-01-01",
            ),
            candidate(
                f"crm:B{i}",
                first_name_key=f"anna{i}",
                last_name_key=f"smith{i}",
                email_key=f"a{i}@x.de",
                birth_date=dob_b,
            ),
        ]
    create_candidates(con, "candidates", rows)
    load_records(con, "candidates")
    guards = measure_guards(con, "identity_records", CONFIG)
    assert guards.given_names
    assert not guards.birth_dates
    assert guards.evidence["birth_dates"]["anchored_pairs"] == 40
    assert guards.evidence["birth_dates"]["contradicting"] == 13
    # too few anchored pairs: the guard stays on
    create_candidates(con, "candidates", rows[:10])
    load_records(con, "candidates")
    assert measure_guards(con, "identity_records", CONFIG).birth_dates


def _edges(con, rows, limit=60):
    create_candidates(con, "candidates", rows)
    load_records(con, "candidates")
    con.execute(SHARED_KEYS_SQL.format(limit=limit))
    con.execute(deterministic_edges_sql(CONFIG))
    edges = con.execute(
        """select l.record_id, r.record_id, e.rule from identity_rule_edges as e
           join identity_records as l on l.node = e.node_l join identity_records as r on r.node = e.node_r
           order by all"""
    ).fetchall()
    return {(a, b, rule) for a, b, rule in edges}


def test_household_sharing_an_email_is_not_linked_but_the_person_is(con):
    rows = [
        candidate("crm:C1", first_name_key="anna", last_name_key="schmidt", email_key="family.schmidt@gmail.com"),
        candidate("crm:C2", first_name_key="ben", last_name_key="schmidt", email_key="family.schmidt@gmail.com"),
        candidate("erp:A1", first_name_key="anna", last_name_key="schmidt", email_key="family.schmidt@gmail.com"),
    ]
    edges = _edges(con, rows)
    assert ("crm:C1", "erp:A1", "email") in edges
    assert not any({"crm:C1", "crm:C2"} == {a, b} or {"crm:C2", "erp:A1"} == {a, b} for a, b, _ in edges)


def test_phone_links_only_with_the_same_surname(con):
    rows = [
        candidate("crm:C1", first_name_key="lena", last_name_key="meyer", phone_nsn="301234567", country="DE"),
        candidate("erp:A1", first_name_key="lena", last_name_key="meyer", phone_nsn="301234567", country="DE"),
        candidate("erp:A2", first_name_key="lena", last_name_key="wagner", phone_nsn="301234567", country="DE"),
    ]
    assert _edges(con, rows) == {("crm:C1", "erp:A1", "phone_surname")}


def test_wrong_crm_reference_is_refused_and_listed(con):
    rows = [
        candidate("crm:C1", first_name_key="julia", last_name_key="bakker"),
        candidate("erp:A1", first_name_key="julia", last_name_key="bakker", ref_crm_customer_id="C1"),
        candidate("erp:A2", first_name_key="pieter", last_name_key="visser", ref_crm_customer_id="C1"),
        candidate("events:anon-1", ref_crm_customer_id="C1"),
    ]
    edges = _edges(con, rows)
    assert edges == {("crm:C1", "erp:A1", "erp_crm_reference"), ("crm:C1", "events:anon-1", "event_login")}
    conflicts = con.execute("select record_id, referenced_record_id from identity_reference_conflicts").fetchall()
    assert conflicts == [("erp:A2", "crm:C1")]


def test_a_key_shared_by_too_many_records_links_nobody(con):
    rows = [
        candidate(f"crm:C{i}", first_name_key="anna", last_name_key="smith", email_key="orders@shop.com")
        for i in range(5)
    ]
    assert _edges(con, rows, limit=3) == set()
    assert con.execute("select field, value, records from identity_shared_keys").fetchall() == [
        ("email", "orders@shop.com", 5)
    ]


def test_records_are_numbered_by_record_id_and_a_repeated_id_is_refused(con):
    create_candidates(con, "candidates", [candidate("erp:A2"), candidate("crm:C1"), candidate("crm:C2")])
    assert load_records(con, "candidates") == 3
    assert con.execute("select record_id, node from identity_records").fetchall() == [
        ("crm:C1", 0),
        ("crm:C2", 1),
        ("erp:A2", 2),
    ]
    create_candidates(con, "candidates", [candidate("crm:C1"), candidate("crm:C1"), candidate("crm:C2")])
    with pytest.raises(ValueError, match="record_id must be unique"):
        load_records(con, "candidates")
