"""Imported Online Retail II files flow through the pipeline with the public-data definition."""

from __future__ import annotations

import duckdb
import pytest

from orchestration.cli import main
from orchestration.settings import get_settings
from tests.warehouse.test_online_retail_import import write_sample

pytestmark = pytest.mark.pipeline_runs(1)


def test_imported_retail_data_runs_with_the_public_data_definition(segments_home):
    source = write_sample(segments_home)
    landing = segments_home / "retail_landing"
    assert main(["import", "online-retail", "--source", str(source), "--out", str(landing)]) == 0
    definition = "ml/segmentation/definitions/behavioural_public_data.yaml"
    assert main(["run", "--landing", str(landing), "--definition", definition]) == 0
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        kinds = dict(con.execute("select reason_kind, count(*) from audit.quarantine group by 1").fetchall())
        segments = con.execute(
            "select customer_id, is_fallback, fallback_reason, definition_version from segments.customer_segments "
            "where segment_family = 'behavioural' order by 1"
        ).fetchall()
        rfm = con.execute(
            "select segment_key, is_fallback, r_score is not null from segments.customer_segments "
            "where segment_family = 'rfm'"
        ).fetchall()
        definitions = con.execute("select definition_name from segments.segment_definitions").fetchall()
        profiles = con.execute(
            "select segment_family, sum(customers), sum(share) from segments.segment_profiles group by 1 order by 1"
        ).fetchall()
    # the dirt is quarantined with its reason, not dropped by the importer
    assert kinds == {"missing_required": 2, "orphan_reference": 1, "negative_amount": 1, "negative_quantity": 1}
    # two customers, too few to train on: fallbacks with the reason; no consent is needed for public data
    assert [(s[1], s[2]) for s in segments] == [(True, "no_champion_model"), (True, "no_champion_model")]
    assert ("behavioural_public_data",) in definitions and ("rfm",) in definitions
    # consent is not required for this public data: both customers are scored in the rfm family, not fallbacks
    assert len(rfm) == 2 and all(not fallback and scored for _, fallback, scored in rfm)
    assert profiles == [("behavioural", 2, 1.0), ("predictive", 2, 1.0), ("rfm", 2, 1.0)]


def test_an_invalid_definition_is_refused_before_running(segments_home, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: one\n")
    assert main(["run", "--landing", str(segments_home), "--definition", str(bad)]) == 2
