"""The match threshold: configured, from labelled pairs, or from the model's expected F1; borderline pairs."""

from __future__ import annotations

import duckdb
import pytest

from ml.identity.config import IdentityConfig
from ml.identity.threshold import LabelsError, apply_threshold, borderline_pairs, calibrate, load_labels


@pytest.fixture
def con():
    c = duckdb.connect()
    # six records, each its own profile; scored pairs with their probabilities
    c.execute("create temp table identity_records as select i as node, 'crm:C' || i as record_id from range(6) t(i)")
    c.execute("create temp table identity_profile_map as select node, node as unique_id from identity_records")
    c.execute(
        """create temp table identity_splink_scores as
           select * from (values (0, 1, 0.999), (2, 3, 0.97), (0, 2, 0.6), (1, 4, 0.3), (3, 5, 0.08))
           t(unique_id_l, unique_id_r, match_probability)"""
    )
    yield c
    c.close()


def test_configured_threshold_wins(con):
    t = calibrate(con, IdentityConfig(match_threshold=0.9), has_labels=False)
    assert (t.value, t.source) == (0.9, "configured")
    assert apply_threshold(con, t) == 2


def test_expected_f1_threshold(con):
    # taking probabilities at face value: linking >= 0.6 finds 2.569 of 2.949 expected matches in 3
    # pairs (F1 0.864), >= 0.97 finds 1.969 in 2 pairs (0.797), >= 0.999 0.999 in 1 (0.506)
    t = calibrate(con, IdentityConfig(threshold_beta=1.0), has_labels=False)
    assert t.source == "expected_f1"
    assert t.value == pytest.approx(0.6)
    assert t.detail["expected_f"] == pytest.approx(2 * 2.569 / (3 + 2.949), abs=1e-3)


def test_precision_weighted_threshold(con):
    # F0.5 weighs a wrong link twice: 1.25 TP / (n + 0.25 M) is 0.899 at 0.97 against 0.859 at 0.6
    t = calibrate(con, IdentityConfig(threshold_beta=0.5), has_labels=False)
    assert (t.source, t.value) == ("expected_f0.5", pytest.approx(0.97))


def test_expected_f1_never_below_the_minimum(con):
    con.execute("update identity_splink_scores set match_probability = match_probability / 3")
    t = calibrate(con, IdentityConfig(min_match_threshold=0.5), has_labels=False)
    assert t.source == "minimum"
    assert t.value == 0.5
    assert apply_threshold(con, t) == 0


def test_labelled_pairs_set_the_threshold(con, tmp_path):
    labels = tmp_path / "labels.csv"
    # 0-1, 2-3 and 1-4 are one person each, 0-2 is not. Linking at 0.3 finds all three and 0-2 with
    # them (3 TP, 1 FP: F1 0.857); at 0.97 two (2 TP, 1 FN: 0.8); at 0.6 two and 0-2 (0.667)
    labels.write_text(
        "record_id_l,record_id_r,is_match\ncrm:C0,crm:C1,1\ncrm:C2,crm:C3,true\ncrm:C0,crm:C2,0\ncrm:C1,crm:C4,1\n"
    )
    assert load_labels(con, labels) == 4
    t = calibrate(con, IdentityConfig(), has_labels=True)
    assert t.source == "labels"
    assert t.value == pytest.approx(0.3)
    assert (t.detail["tp"], t.detail["fp"], t.detail["fn"]) == (3, 1, 0)


def test_labels_that_name_unknown_records_fall_back_to_the_model(con, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("record_id_l,record_id_r,is_match\ncrm:X1,crm:X2,1\n")
    load_labels(con, labels)
    assert calibrate(con, IdentityConfig(), has_labels=True).source == "expected_f0.5"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b,c\n1,2,3\n", "missing column(s) record_id_l, record_id_r, is_match"),
        ("record_id_l,record_id_r,is_match\ncrm:C0,crm:C1,maybe\n", "first on line 2"),
        ("record_id_l,record_id_r,is_match\ncrm:C0,,1\n", "without two record ids"),
    ],
)
def test_bad_labels_are_refused_with_the_reason(con, tmp_path, content, message):
    labels = tmp_path / "labels.csv"
    labels.write_text(content)
    with pytest.raises(LabelsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_labels(con, labels)


def test_borderline_pairs_lie_just_under_the_threshold(con):
    config = IdentityConfig(review_band=2.0)
    t = calibrate(con, IdentityConfig(match_threshold=0.97), has_labels=False)
    # 0.97 is a match weight of 5.0; the band reaches weight 3.0 (p 0.889): 0.6 is not borderline
    assert borderline_pairs(con, t, config) == []
    t = calibrate(con, IdentityConfig(match_threshold=0.8), has_labels=False)
    # weight 2.0 down to 0.0 (p 0.5): the 0.6 pair only
    assert borderline_pairs(con, t, config) == [(0, 2, 0.6)]
