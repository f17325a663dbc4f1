"""Reconciliation queries: every layer must account for the rows of the layer below."""

from __future__ import annotations

import duckdb

from warehouse.contracts import CONTRACTS
from warehouse.ingest import LEDGER_TABLE, QUARANTINE_TABLE, VERSIONS_TABLE


def ledger_discrepancies(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Loaded files whose ledger counts disagree with themselves, the raw table or the quarantine.

    rows read = rows loaded + rows quarantined + rows already loaded (identical to a row loaded from an
    earlier file, e.g. when a corrected file is delivered again) + rows updated (a new version of a key
    loaded before) + rows deleted (a deletion file's keys whose record it deleted); rows loaded + updated
    = the file's rows in the raw table + its rows a later delivery replaced or deleted
    (audit.record_versions); rows quarantined = its rows in the quarantine.
    """
    raw_counts = " union all ".join(
        f"select '{c.qualified_name}' as source_table, _file_sha256 as sha, count(*) as n "
        f"from {c.qualified_name} group by all"
        for c in CONTRACTS
    )
    rows = con.execute(
        f"""
        with raw as ({raw_counts}),
        q as (select source_table, file_sha256 as sha, count(*) as n from {QUARANTINE_TABLE} group by all),
        v as (select source_table, file_sha256 as sha, count(*) as n from {VERSIONS_TABLE} group by all)
        select l.source_table, l.source_file, l.rows_read, l.rows_loaded, l.rows_quarantined, l.rows_already_loaded,
               l.rows_updated, l.rows_deleted, coalesce(raw.n, 0) as rows_in_raw,
               coalesce(q.n, 0) as rows_in_quarantine, coalesce(v.n, 0) as rows_replaced_later
        from {LEDGER_TABLE} l
        left join raw on raw.source_table = l.source_table and raw.sha = l.file_sha256
        left join q on q.source_table = l.source_table and q.sha = l.file_sha256
        left join v on v.source_table = l.source_table and v.sha = l.file_sha256
        where l.status = 'loaded'
          and (l.rows_read <> l.rows_loaded + l.rows_quarantined + l.rows_already_loaded + l.rows_updated
                               + l.rows_deleted
               or l.rows_loaded + l.rows_updated <> coalesce(raw.n, 0) + coalesce(v.n, 0)
               or l.rows_quarantined <> coalesce(q.n, 0))
        """
    ).fetchall()
    cols = [
        "source_table",
        "source_file",
        "rows_read",
        "rows_loaded",
        "rows_quarantined",
        "rows_already_loaded",
        "rows_updated",
        "rows_deleted",
        "rows_in_raw",
        "rows_in_quarantine",
        "rows_replaced_later",
    ]
    return [dict(zip(cols, r, strict=True)) for r in rows]
