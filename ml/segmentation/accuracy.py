"""Agreement of the served behavioural segments with the demo generator's planted segments.

A customer's planted segment is the segment of the person behind most of its source records (identity
is not perfect, so a few customers mix persons). Fallback rows (no consent, too little history) are
left out: the model never placed them. Adjusted Rand index: 1 = the same partition, 0 = chance.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from sklearn.metrics import adjusted_rand_score

PREFIX = "case t.source_table when 'crm.customers' then 'crm:' when 'erp.accounts' then 'erp:' else 'support:' end"


def planted_per_customer(truth_dir: Path, column: str) -> tuple[str, list[str]]:
    """SQL and parameters of a relation (customer_id, planted): the truth column `column` of `persons.parquet`
    (a planted segment, a buying window) of the person behind most of each customer's CRM, ERP and support
    records. `column` is one of the generator's truth columns; the paths travel as parameters."""
    if column not in ("true_segment", "active_from", "active_until"):
        raise ValueError(f"not a planted truth column: {column!r}")
    truth_dir = Path(truth_dir)
    sql = f"""
        select r.customer_id, mode(p.{column}) as planted
        from identity.customer_source_records as r
        inner join read_parquet(?) as t on r.record_id = {PREFIX} || t.source_record_id
        inner join read_parquet(?) as p using (person_id)
        where t.source_table <> 'events.events'
        group by r.customer_id"""
    return sql, [str(truth_dir / "source_records.parquet"), str(truth_dir / "persons.parquet")]


def segment_agreement(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> dict:
    """ARI of the behavioural family of `segments.customer_segments` (non-fallback rows) against the
    planted segments, and the cross-table of segment names by planted segment."""
    planted, params = planted_per_customer(truth_dir, "true_segment")
    df = con.execute(
        f"""
        with planted as ({planted})
        select s.customer_id, s.segment_name, pl.planted as planted_segment
        from segments.customer_segments as s
        inner join planted as pl using (customer_id)
        where s.segment_family = 'behavioural' and not s.is_fallback
        """,
        params,
    ).df()
    crosstab = df.groupby(["segment_name", "planted_segment"]).size().unstack(fill_value=0)
    return {
        "customers_placed_by_model": len(df),
        "adjusted_rand_index": float(adjusted_rand_score(df["planted_segment"], df["segment_name"]))
        if len(df)
        else float("nan"),
        "crosstab": {name: {k: int(v) for k, v in row.items()} for name, row in crosstab.iterrows()},
    }
