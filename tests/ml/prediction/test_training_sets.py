"""Reading the training set from a real DuckDB file: only complete outcome windows and predictable customers,
in date and customer order, the same rows whether read in one chunk or in many."""

import duckdb
import pandas as pd
import pytest

from ml.prediction import training_sets as ts
from ml.prediction.definition import load_prediction_definition
from tests.ml.prediction.test_backtest import planted_training_set

DEFINITION = load_prediction_definition()


@pytest.fixture
def warehouse(tmp_path):
    """marts.customer_feature_snapshots and marts.customer_outcomes of 5,000 customers x 4 dates, where every
    7th customer objected to profiling, every 11th has no completed order and the last date's window is open."""
    planted = planted_training_set(customers=5_000)
    planted = planted.sample(frac=1.0, random_state=3).reset_index(drop=True)  # the read must order them
    number = planted["customer_id"].str[4:].astype(int)
    planted["profiling_basis"] = ["objected" if n % 7 == 0 else "consent" for n in number]
    planted["has_profiling_consent"] = planted["profiling_basis"] == "consent"
    planted.loc[number % 11 == 0, "frequency"] = 0
    planted["lineless_order_count"] = 0
    planted["is_outcome_complete"] = planted["as_of_date"] < planted["as_of_date"].max()
    snapshot_columns = ["customer_id", "as_of_date", *ts.feature_columns(DEFINITION)]
    snapshots = planted[list(dict.fromkeys(snapshot_columns))]  # noqa: F841 (read by DuckDB)
    outcomes = planted[["customer_id", "as_of_date", *ts.OUTCOME_COLUMNS, "is_outcome_complete"]]  # noqa: F841
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(f"create table {ts.SNAPSHOTS_TABLE} as select * from snapshots")
        con.execute(f"create table {ts.OUTCOMES_TABLE} as select * from outcomes")
    return path, planted


def read(path) -> pd.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return ts.read_training_set(con, DEFINITION)


def test_reads_complete_windows_of_predictable_customers_in_order(warehouse, monkeypatch):
    path, planted = warehouse
    frame = read(path)
    number = frame["customer_id"].str[4:].astype(int)
    assert len(frame) == 3 * (5_000 - len({*range(0, 5_000, 7), *range(0, 5_000, 11)}))
    assert not (number % 7 == 0).any() and not (number % 11 == 0).any()
    assert frame["as_of_date"].max() < planted["as_of_date"].max()
    ordered = frame.sort_values(["as_of_date", "customer_id"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, ordered)

    monkeypatch.setattr(ts, "READ_CHUNK_VECTORS", 1)  # 2,048 rows per chunk: 8 chunks
    pd.testing.assert_frame_equal(read(path), frame)


def test_no_complete_window_reads_an_empty_frame_with_every_column(warehouse):
    path, _ = warehouse
    with duckdb.connect(str(path)) as con:
        con.execute(f"update {ts.OUTCOMES_TABLE} set is_outcome_complete = false")
    frame = read(path)
    assert frame.empty and list(frame.columns) == [*ts.feature_columns(DEFINITION), *ts.OUTCOME_COLUMNS]
