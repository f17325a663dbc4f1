"""A single source with internal duplicates: a CRM export alone is deduplicated by Splink.

The generator's CRM file (about 10% duplicate person records, with typos, nicknames, folded accents
or a changed e-mail) is the only landing file; there is no ERP or support record to lean on.
"""

from __future__ import annotations

import dataclasses
import shutil

import duckdb
import pandas as pd
import pytest

from demo.generator import generate
from orchestration.cli.run import execute_job
from orchestration.keys import IDENTITY_JOB
from orchestration.settings import get_settings

pytestmark = pytest.mark.pipeline_runs(1)


def test_crm_export_with_internal_duplicates_is_deduplicated(segments_home):
    generated = segments_home / "generated"
    generate(generated, customers=1_500, seed=11)
    landing = segments_home / "landing"
    shutil.copytree(generated / "landing" / "crm" / "customers", landing / "crm" / "customers")

    # identity is all this checks: the job that ingests and resolves identities, not the whole graph
    assert execute_job(dataclasses.replace(get_settings(), landing_dir=landing), IDENTITY_JOB).success

    truth = pd.read_parquet(generated / "truth" / "source_records.parquet")
    truth = truth[truth["source_table"] == "crm.customers"]
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        con.register("truth", truth)
        pairs = con.execute(
            """with j as (
                   select r.customer_id, t.person_id
                   from identity.customer_source_records as r
                   inner join truth as t on r.record_id = 'crm:' || t.source_record_id
               ),
               cells as (select customer_id, person_id, count(*) as n from j group by all)
               select
                   (select sum(n * (n - 1) // 2) from cells),
                   (select sum(n * (n - 1) // 2) from (select customer_id, sum(n) as n from cells group by 1)),
                   (select sum(n * (n - 1) // 2) from (select person_id, sum(n) as n from cells group by 1))"""
        ).fetchone()
        trained = con.execute(
            "select json_array_length(splink_model -> 'comparisons') from identity.resolution_runs"
        ).fetchone()[0]
    correct, predicted, true = pairs
    assert true > 100  # the export really has duplicates
    assert trained > 0  # Splink was trained on this export alone
    assert correct / predicted >= 0.99
    assert correct / true >= 0.9
