"""The labelled public sets become a CRM customers landing file plus the truth, nothing cleaned on the way."""

from __future__ import annotations

import csv

import duckdb
import pytest

from bench.identity_sets import SETS, write_labels, write_set


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "sets"
    root.mkdir()
    (root / "fake_1000.csv").write_text(
        "unique_id,first_name,surname,dob,city,email,cluster\n"
        "0,Robert,Alan,1971-06-24,,robert255@smith.net,0\n"
        "1,Rob,Allen,1971-06-24,London,roberta25@smith.net,0\n"
        "2,Grace,,1997-04-26,Hull,grace.kelly52@jones.com,1\n"
    )
    (root / "fake_1000_labels.csv").write_text(
        "unique_id_l,source_dataset_l,unique_id_r,source_dataset_r,clerical_match_score\n"
        "0,fake_1000,1,fake_1000,1.0\n0,fake_1000,2,fake_1000,0.0\n"
    )
    return root


def test_a_set_is_delivered_as_a_crm_customers_file_with_its_truth(root, tmp_path):
    data = tmp_path / "data"
    assert write_set(SETS["fake_1000"], root, data) == 3
    with (data / "landing" / "crm" / "customers" / "fake_1000.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["crm_customer_id", "first_name", "last_name", "birth_date", "city", "email", "created_at"]
    assert [r["last_name"] for r in rows] == ["Alan", "Allen", ""]  # as delivered: nothing cleaned
    truth = duckdb.sql(f"select * from '{data / 'truth' / 'source_records.parquet'}' order by 2").fetchall()
    assert truth == [("crm.customers", "0", "0"), ("crm.customers", "1", "0"), ("crm.customers", "2", "1")]


def test_clerical_labels_become_the_identity_labels_file(root, tmp_path):
    path = tmp_path / "identity" / "labels.csv"
    assert write_labels(SETS["fake_1000"], root, path) == 2
    assert path.read_text().splitlines() == [
        "record_id_l,record_id_r,is_match",
        "crm:0,crm:1,true",
        "crm:0,crm:2,false",
    ]


def test_a_missing_set_says_where_it_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="historical_figures_with_errors_50k.parquet not found"):
        write_set(SETS["historical_50k"], tmp_path, tmp_path / "data")
