"""Integration fixtures: an isolated SEGMENTS_HOME per test module."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

PIPELINE_ENV = (
    "SEGMENTS_HOME",
    "SEGMENTS_LANDING",
    "DAGSTER_HOME",
    "SEGMENTS_WAREHOUSE_PATH",
    "MLFLOW_TRACKING_URI",
    "SEGMENTS_GX_SAMPLE_ROWS",
    "SEGMENTS_LANDING_SETTLE_SECONDS",
    "SEGMENTS_IDENTITY_DIR",
    "SEGMENTS_PROJECT",
    "SEGMENTS_AS_OF",
)


@pytest.fixture(scope="module")
def segments_home(tmp_path_factory) -> Path:
    """A fresh SEGMENTS_HOME, with every pipeline variable reset for the module and restored after."""
    home = tmp_path_factory.mktemp("segments_home")
    mp = pytest.MonkeyPatch()
    for var in PIPELINE_ENV:
        mp.delenv(var, raising=False)
    mp.setenv("SEGMENTS_HOME", str(home))
    # the tests write landing files and run at once: no settle wait (tests/warehouse/test_ingest_complete_files.py
    # and the fault suite test the wait itself)
    mp.setenv("SEGMENTS_LANDING_SETTLE_SECONDS", "0")
    # what earlier test files of this worker left alive stays out of the full collections the pipeline runs
    # after each warehouse step (see pytest_collection_finish in tests/conftest.py)
    gc.collect()
    gc.freeze()
    yield home
    mp.undo()
