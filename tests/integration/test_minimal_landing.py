"""A user's own CRM export and nothing else flows through the whole pipeline.

Only `landing/crm/customers/` has a file (the contract's columns, CSV with quoted fields and an
extra column); every other source is empty, which is valid.
"""

from __future__ import annotations

import duckdb

from orchestration.cli.run import run_pipeline
from orchestration.settings import get_settings

HEADER = (
    "crm_customer_id,first_name,last_name,email,phone,street,city,postal_code,country,"
    "birth_date,created_at,loyalty_tier\n"
)


def test_crm_export_alone_gets_every_customer_a_segment(segments_home):
    folder = segments_home / "landing" / "crm" / "customers"
    folder.mkdir(parents=True)
    rows = [
        (
            f'X{i},Ann{i},"Smith, {i}",ann{i}@smith-family.co.uk,+44 20 7946 {i:04d},1 High St,London,E1 6AN,GB,'
            f"1980-02-0{1 + i % 9},2024-0{1 + i % 9}-15T10:00:00,gold"
        )
        for i in range(60)
    ]
    # a placeholder address typed into the export: blocked, so it links nobody and never survives
    rows.append("X60,Bo,Placeholder,test@example.com,,2 High St,London,E1 6AN,GB,1981-01-01,2024-01-15T10:00:00,gold")
    # placeholder phones and postal codes, caught by the blocklist's patterns (constant regexes in a real run)
    rows.append(
        "X61,Cy,Zeros,cy@zeros.example.co.uk,07777 777777,3 High St,London,000,GB,1982-01-01,2024-01-15T10:00:00,gold"
    )
    rows.append(
        "X62,Di,Counting,di@counting.co.uk,+44 1234567890,4 High St,London,E1 6AN,GB,"
        "1983-01-01,2024-01-15T10:00:00,gold"
    )
    (folder / "export.csv").write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")

    assert run_pipeline(get_settings()).success  # default landing folder: $SEGMENTS_HOME/landing

    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        n = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        assert n("select count(*) from crm.customers") == 63
        assert n("select count(*) from erp.orders") == 0
        assert n("select count(*) from marts.customers") == 63
        # one row per customer per family (behavioural, rfm)
        assert n("select count(*) from segments.customer_segments") == 2 * 63
        assert n("select count(distinct customer_id || segment_family) from segments.customer_segments") == 2 * 63
        assert n("select email from marts.customers where last_name = 'Placeholder'") is None
        blocked = dict(
            con.execute(
                "select source_record_id, blocked_values from intermediate.int_identity_candidates "
                "where source_record_id in ('X61', 'X62')"
            ).fetchall()
        )
        assert blocked == {
            "X61": ["phone: one repeated digit", "postal_code: all zeros"],
            "X62": ["phone: sequential placeholder"],
        }
        assert n("select count(*) from intermediate.int_identity_candidates where len(blocked_values) > 0") == 3
        assert n("select count(*) from segments.customer_segments where segment_name is null") == 0
        # no orders and no consent data: nobody is profiled, everyone gets a fallback with its reason in each family
        assert (
            n(
                "select count(*) from segments.customer_segments "
                "where is_fallback and fallback_reason = 'no_profiling_consent'"
            )
            == 2 * 63
        )
        assert (
            n(
                "select count(*) from segments.customer_segments "
                "where segment_key = 'rfm_not_profiled' and r_score is null"
            )
            == 63
        )
        # one profile row per family, each the whole family
        assert con.execute(
            "select segment_family, segment_key, customers, share from segments.segment_profiles order by 1"
        ).fetchall() == [("behavioural", "fallback_not_profiled", 63, 1.0), ("rfm", "rfm_not_profiled", 63, 1.0)]
        assert n("select list(extra_columns)[1][1] from audit.ingest_ledger") == "loyalty_tier"
        assert n("select last_name from marts.customers where email = 'ann3@smith-family.co.uk'") == "Smith, 3"

    # the pattern hits above came from constant regexes (compiled once), not from the join on the blocklist
    # the model falls back to when the seed is no table (parse time, unit tests)
    (compiled,) = (segments_home / "dbt" / "target").glob(
        "identity_input_models-*/compiled/segments_warehouse/models/intermediate/identity/int_identity_candidates.sql"
    )
    sql = compiled.read_text(encoding="utf-8")
    assert "regexp_matches(phone_nsn, '^0+$')" in sql and "regexp_matches(s.phone_nsn, b.value)" not in sql
