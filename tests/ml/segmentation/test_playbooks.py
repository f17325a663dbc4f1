"""Playbooks: the outbox gets each action once, only with consent, with a deterministic holdout; alerts
fire on configured edges above the revenue threshold."""

from __future__ import annotations

import copy

import duckdb
import pytest
import yaml

from ml.segmentation.playbooks import PLAYBOOKS, PlaybookError, evaluate_playbooks, load_playbooks, parse_playbooks
from ml.segmentation.store import update_membership_history, write_assignments


def assignments(segment_of: dict[str, str]) -> list:
    import pandas as pd

    ids = sorted(segment_of)
    rows = pd.DataFrame(
        {
            "customer_id": ids,
            "segment_family": "rfm",
            "segment_key": [segment_of[i] for i in ids],
            "segment_name": [segment_of[i] for i in ids],
            "r_score": 3,
            "f_score": 3,
            "m_score": 3,
            "model_name": "rfm_rules",
            "model_version": "1.0.0",
            "definition_version": "1.0.0",
            "reason": "r",
            "is_fallback": False,
            "fallback_reason": None,
        }
    )
    behavioural = rows.assign(segment_family="behavioural", segment_key="behavioural_x", segment_name="X")
    return [behavioural, rows]


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("create schema marts")
    ids = [f"cus_{i:04d}" for i in range(400)]
    c.execute(
        """create table marts.customers as
           select unnest($ids) as customer_id, 'consent' as marketing_email_basis, 'none' as marketing_sms_basis""",
        {"ids": ids},
    )
    # one objected, one without a basis; one under the project's legitimate interest (may be contacted)
    c.execute("update marts.customers set marketing_email_basis = 'objected' where customer_id = 'cus_0000'")
    c.execute("update marts.customers set marketing_email_basis = 'none' where customer_id = 'cus_0001'")
    c.execute("update marts.customers set marketing_email_basis = 'legitimate_interest' where customer_id = 'cus_0002'")
    c.execute(
        "create table marts.customer_features as select customer_id, 1000.0 as monetary_base from marts.customers"
    )
    c.execute("update marts.customer_features set monetary_base = 10 where customer_id = 'cus_0003'")
    yield c, ids
    c.close()


def test_actions_once_with_consent_and_holdout_and_alerts_on_edges(con):
    c, ids = con
    books = load_playbooks()
    loyal = dict.fromkeys(ids, "rfm_loyal")
    write_assignments(c, assignments(loyal), run_id="r1")
    update_membership_history(c, "r1")
    first = evaluate_playbooks(c, "r1", books)
    assert first["winback_email"]["matched"] == 0 and first["valuable_customer_slipping"]["new"] == 0

    slipped = {**loyal, **dict.fromkeys(ids[:200], "rfm_at_risk")}
    write_assignments(c, assignments(slipped), run_id="r2")
    update_membership_history(c, "r2")
    second = evaluate_playbooks(c, "r2", books)
    # winback (segment rule) and the personal note (transition rule): 200 matched, 2 without e-mail consent
    for name in ("winback_email", "slipping_loyal_email"):
        assert second[name]["matched"] == 200 and second[name]["no_consent"] == 2 and second[name]["new"] == 198
        assert 5 <= second[name]["holdout"] <= 40  # ~10% of 198, deterministic
    # alert: 200 crossed Loyal -> At Risk, one of them below 500 EUR
    assert second["valuable_customer_slipping"]["new"] == 199
    outbox = c.execute("select count(*), count(distinct action_id) from ml.segment_actions").fetchall()[0]
    assert outbox == (396, 396)
    bases = c.execute("select lawful_basis, count(*) from ml.segment_actions group by all order by all").fetchall()
    assert bases == [("consent", 394), ("legitimate_interest", 2)]  # each row says what it rests on
    assert (
        c.execute("select count(*) from ml.segment_actions where customer_id in ('cus_0000', 'cus_0001')").fetchall()[
            0
        ][0]
        == 0
    )

    # the same run again, and a next run where nothing changes: nothing new in the outbox or alerts
    again = evaluate_playbooks(c, "r2", books)
    assert again["winback_email"]["new"] == 0
    write_assignments(c, assignments(slipped), run_id="r3")
    update_membership_history(c, "r3")
    third = evaluate_playbooks(c, "r3", books)
    assert third["winback_email"]["new"] == 0 and third["slipping_loyal_email"]["matched"] == 0
    assert c.execute("select count(*) from ml.segment_actions").fetchall()[0][0] == 396
    assert c.execute("select count(*) from ml.segment_alerts").fetchall()[0][0] == 199
    # the per-rule candidates table is temporary and gone after the evaluation
    assert (
        c.execute("select count(*) from duckdb_tables() where table_name = 'playbook_candidates'").fetchall()[0][0] == 0
    )
    holdout = dict(
        c.execute(
            "select customer_id, is_holdout from ml.segment_actions where action_name = 'winback_email'"
        ).fetchall()
    )
    # deterministic: the same customers are in the holdout of the same playbook on every evaluation
    c2 = duckdb.connect()
    assert holdout == dict(
        c2.execute(
            "select unnest($ids) as id, md5_number('winback_email|' || unnest($ids)) % 10000 < 1000",
            {"ids": list(holdout)},
        ).fetchall()
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["actions"][0].update(purpose="telepathy"), "purpose"),
        (lambda r: r["actions"][0]["when"].update(segment=["x'; drop table y; --"]), "not valid names"),
        (lambda r: r.update(holdout_share=1.5), "holdout_share"),
        (lambda r: r["actions"][0]["when"].update(transition={"from": ["rfm_loyal"], "to": ["rfm_at_risk"]}), "either"),
    ],
)
def test_invalid_playbooks_say_why(mutate, message):
    raw = copy.deepcopy(yaml.safe_load(PLAYBOOKS.read_text()))
    mutate(raw)
    with pytest.raises(PlaybookError, match=message):
        parse_playbooks(raw)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(holdout_share=0.2), "changed but its version 1.1.0 did not: bump the version"),
        (lambda r: r.update(version="9.9.9"), "playbooks 9.9.9 is not in versions.lock"),
    ],
)
def test_playbooks_must_match_their_locked_version(tmp_path, mutate, message):
    raw = copy.deepcopy(yaml.safe_load(PLAYBOOKS.read_text()))
    mutate(raw)
    path = tmp_path / "playbooks.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PlaybookError, match=message):
        load_playbooks(path)
