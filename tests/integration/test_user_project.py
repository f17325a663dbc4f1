"""A user project outside the repo, end to end: `segments init --example online_retail_ii`, the real file
shapes mapped by the project's mapping, profiling under the project's lawful basis, the project's own
model name, then a correction delivered as an update and a deletion; the restricted activation file."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from orchestration.cli import main
from orchestration.settings import get_settings
from tests.warehouse.test_online_retail_import import write_sample
from warehouse.importers.online_retail import FIRST, SECOND
from warehouse.reconcile import ledger_discrepancies

pytestmark = pytest.mark.pipeline_runs(2)


def test_a_project_maps_real_exports_profiles_under_its_basis_and_takes_corrections(
    segments_home, tmp_path, monkeypatch, capsys
):
    project = tmp_path / "retail"
    assert main(["init", str(project), "--example", "online_retail_ii"]) == 0
    source = write_sample(tmp_path)
    (project / "landing" / "online_retail").mkdir(parents=True)
    shutil.copyfile(source / FIRST, project / "landing" / "online_retail" / "2009-2010.parquet")
    shutil.copyfile(source / SECOND, project / "landing" / "online_retail" / "2010-2011.parquet")
    monkeypatch.setenv("SEGMENTS_PROJECT", str(project))
    assert main(["map", "check"]) == 0
    assert "erp.order_lines" in capsys.readouterr().out
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "lawful basis: profiling legitimate_interest" in out
    assert "Lawful basis for profiling (marts.customers.profiling_basis): legitimate_interest 2" in out
    settings = get_settings()
    assert settings.home == segments_home.resolve()  # SEGMENTS_HOME wins over the project's home
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert ledger_discrepancies(con) == []
        loaded = con.execute(
            "select source_file from audit.ingest_ledger where status = 'loaded' order by 1"
        ).fetchall()
        behavioural = con.execute(
            "select model_name, fallback_reason from segments.customer_segments where segment_family = 'behavioural'"
        ).fetchall()
        lines = con.execute("select count(*) from erp.order_lines").fetchone()[0]
        bases = con.execute("select purpose, basis from audit.lawful_bases order by 1").fetchall()
        money = con.execute(
            "select distinct currency, fx_rate_to_base, net_amount = net_revenue_base from marts.orders"
        ).fetchall()
    # the mapped files, named after the source file and the mapping; the project's base currency is GBP, so
    # the GBP orders need no exchange rate and are not converted
    assert any(f.startswith("erp/order_lines/online_retail__2009-2010__m") for (f,) in loaded)
    assert not any(f.startswith("erp/fx_rates/") for (f,) in loaded)
    assert money == [("GBP", 1.0, True)]
    assert bases == [("marketing_email", "consent"), ("marketing_sms", "consent"), ("profiling", "legitimate_interest")]
    # the project's own model; two customers are too few to train on: the reason is said, not `ok`
    assert {m for m, _ in behavioural} == {"online_retail_segmentation"}
    assert {r for _, r in behavioural} == {"no_champion_model"}
    assert "training skipped" in out and "succeeded with" in out
    assert lines == 3  # 1001's two lines and 2001's; the rest is quarantined with its reason
    restricted = settings.serving_dir / "restricted_activation.duckdb"
    assert (restricted.stat().st_mode & 0o777) == 0o600
    with duckdb.connect(str(restricted), read_only=True) as con:
        keys = sorted(
            k for (k,) in con.execute("select erp_account_id from activation.customer_key_crosswalk").fetchall()
        )
    assert keys == ["OR12346", "OR12347"]

    # a correction of an account and the deletion of a line, delivered contract-shaped beside the exports
    accounts = project / "landing" / "erp" / "accounts"
    accounts.mkdir(parents=True)
    (accounts / "fix.csv").write_text("erp_account_id,country,created_at\nOR12347,DK,2011-03-01T08:00:00\n")
    deletes = project / "landing" / "erp" / "order_lines" / "deletes"
    deletes.mkdir(parents=True)
    (deletes / "d1.csv").write_text("order_line_id\n1001-0002\nnope\n")
    assert main(["run"]) == 0
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert ledger_discrepancies(con) == []
        ledger = dict(
            con.execute(
                "select source_file, [rows_updated, rows_deleted, rows_quarantined] from audit.ingest_ledger "
                "where source_file in ('erp/accounts/fix.csv', 'erp/order_lines/deletes/d1.csv')"
            ).fetchall()
        )
        country = con.execute("select country from marts.customers where 'erp:OR12347' in source_record_ids").fetchall()
        versions = con.execute("select change, record from audit.record_versions order by 1").fetchall()
        lines = con.execute("select count(*) from marts.order_lines").fetchone()[0]
    assert ledger == {"erp/accounts/fix.csv": [1, 0, 0], "erp/order_lines/deletes/d1.csv": [0, 1, 1]}
    assert country == [("DK",)]  # the marts reflect the update on the next run
    assert [c for c, _ in versions] == ["deleted", "updated"]
    assert json.loads(versions[1][1])["country"] == "IS"  # the replaced version is kept (Iceland, mapped)
    assert lines == 2  # 1001-0002 deleted
