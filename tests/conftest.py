"""Shared fixtures: every test runs against temp dirs, never the user's ./data."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _offline_tools():
    """No telemetry or network from GX, dbt or MLflow during tests."""
    old = dict(os.environ)
    os.environ.update(
        {
            "GX_ANALYTICS_ENABLED": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "MLFLOW_UV_AUTO_DETECT": "false",
            "TQDM_DISABLE": "1",
        }
    )
    yield
    os.environ.clear()
    os.environ.update(old)
