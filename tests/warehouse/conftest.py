"""Fixtures of the warehouse tests."""

from __future__ import annotations

import duckdb
import pytest


@pytest.fixture
def con(tmp_path):
    """A new DuckDB warehouse file in the test's temp dir (a plain connection, as the ingest tests need)."""
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield c
    c.close()
