"""The ingest asset refuses a landing folder it cannot use, with the folder to use instead: a first run on
an empty or wrong folder would otherwise succeed with nothing loaded and every later step skipped."""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.defs.ingest.assets import landing_files
from orchestration.resources import WarehouseResource
from warehouse.ingest import landing_without_deliveries


def _delivery(folder):
    (folder / "crm" / "customers").mkdir(parents=True)
    (folder / "crm" / "customers" / "customers.csv").write_text("crm_customer_id\nC1\n")


def test_a_landing_folder_without_deliveries_is_described_with_the_folder_to_use(tmp_path):
    assert "does not exist" in landing_without_deliveries(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert "holds no delivery of any table: a delivery is a file under" in landing_without_deliveries(
        tmp_path / "empty"
    )
    _delivery(tmp_path / "generated" / "landing")  # what `segments generate --out generated` writes
    (tmp_path / "generated" / "truth").mkdir()
    said = landing_without_deliveries(tmp_path / "generated")
    assert f"one level down, in {tmp_path / 'generated' / 'landing'}" in said
    assert landing_without_deliveries(tmp_path / "generated" / "landing") is None


@pytest.mark.parametrize("folder", ["nowhere", "generated"])
def test_the_ingest_fails_on_an_unusable_landing_folder_of_an_empty_warehouse(tmp_path, monkeypatch, folder):
    monkeypatch.setenv("SEGMENTS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEGMENTS_PROJECT", raising=False)
    _delivery(tmp_path / "generated" / "landing")
    result = dg.materialize(
        [landing_files],
        resources={"warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb"))},
        run_config={"ops": {"landing_files": {"config": {"landing_dir": str(tmp_path / folder)}}}},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.user_failure_data.description
    assert message == landing_without_deliveries(tmp_path / folder)
    assert not result.get_asset_materialization_events()
