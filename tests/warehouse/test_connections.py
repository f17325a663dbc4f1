"""The connection and transaction helpers every warehouse writer uses."""

import duckdb
import pytest

from warehouse.connections import connect, transaction


def test_a_transaction_commits_when_the_block_ends(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        con.execute("create table t (x integer)")
        with transaction(con):
            con.execute("insert into t values (1)")
    with connect(tmp_path / "w.duckdb", read_only=True) as con:
        assert con.execute("select count(*) from t").fetchone()[0] == 1


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_a_transaction_rolls_back_and_re_raises(error):
    con = duckdb.connect()
    con.execute("create table t (x integer)")
    with pytest.raises(type(error)), transaction(con):
        con.execute("insert into t values (1)")
        raise error
    assert con.execute("select count(*) from t").fetchone()[0] == 0
    with transaction(con):  # the connection is usable again
        con.execute("insert into t values (2)")
    assert con.execute("select x from t").fetchall() == [(2,)]


def test_a_failing_statement_rolls_back_the_statements_before_it():
    con = duckdb.connect()
    con.execute("create table t (x integer primary key)")
    with pytest.raises(duckdb.ConstraintException), transaction(con):
        con.execute("insert into t values (1)")
        con.execute("insert into t values (1)")
    assert con.execute("select count(*) from t").fetchone()[0] == 0


def test_a_read_only_connection_refuses_writes(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        con.execute("create table t (x integer)")
    with connect(tmp_path / "w.duckdb", read_only=True) as con, pytest.raises(duckdb.Error):
        con.execute("insert into t values (1)")
