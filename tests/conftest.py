"""Shared fixtures: every test runs against temp dirs, never the user's ./data."""

from __future__ import annotations

import gc
import os
from collections import defaultdict

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "pipeline_runs(n): the module runs n whole pipelines (each ~25 s of fixed cost); under xdist its file is "
        "handed to a worker first, the most runs first",
    )


def pytest_collection_modifyitems(config, items):
    """Under xdist (`make test`: `--dist loadfile --no-loadscope-reorder`, a file per worker at a time, in
    this order), hand out the longest files first so that no worker is left with a pipeline run at the end
    while the other idles: files marked `pipeline_runs(n)` first, most runs first, then the others by
    number of tests, most first (xdist's own reordering). The order within a file is kept."""
    if not hasattr(config, "workerinput"):  # not an xdist worker: collection order
        return
    files: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        files[item.nodeid.split("::", 1)[0]].append(item)

    def weight(file_items: list[pytest.Item]) -> tuple[int, int]:
        marker = file_items[0].get_closest_marker("pipeline_runs")
        return (-marker.args[0], 0) if marker else (0, -len(file_items))

    items[:] = [item for file_items in sorted(files.values(), key=weight) for item in file_items]


def pytest_collection_finish(session):
    """Freeze what collection left alive (every test module and the libraries they import): the pipeline
    hands memory back after each warehouse step with a full `gc.collect()`
    (`warehouse.connections.release_memory`), and in a test worker that collection would otherwise walk
    the whole suite's objects, several times a step; a `segments run` process has only its own."""
    gc.collect()
    gc.freeze()


def pytest_sessionfinish(session, exitstatus):
    """Hand the frozen objects back to the collector, so that interpreter shutdown finalizes them
    (DuckDB's nanobind types otherwise report them as leaked)."""
    gc.unfreeze()


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
