"""Integration fixtures: an isolated SEGMENTS_HOME per test module."""

from __future__ import annotations

from pathlib import Path

import pytest

PIPELINE_ENV = (
    "SEGMENTS_HOME",
    "SEGMENTS_LANDING",
    "DAGSTER_HOME",
    "SEGMENTS_WAREHOUSE_PATH",
    "MLFLOW_TRACKING_URI",
    "SEGMENTS_GX_SAMPLE_ROWS",
)


@pytest.fixture(scope="module")
def segments_home(tmp_path_factory) -> Path:
    """A fresh SEGMENTS_HOME, with every pipeline variable reset for the module and restored after."""
    home = tmp_path_factory.mktemp("segments_home")
    mp = pytest.MonkeyPatch()
    for var in PIPELINE_ENV:
        mp.delenv(var, raising=False)
    mp.setenv("SEGMENTS_HOME", str(home))
    yield home
    mp.undo()
