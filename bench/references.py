"""The two yardsticks the pipeline is measured against, run on the same landing files.

- `floor`: DuckDB reads every landing file once (all columns parsed) and computes per-customer
  recency, frequency and monetary value (EUR) from orders, lines and FX rates, written to a DuckDB
  file. No identity, no checks, no history: nothing that reads the inputs can be much faster.
- `pandas`: the script a data team writes instead of a pipeline - pandas reads the order files, joins
  orders, lines and FX rates, computes per-account RFM, standardises it, fits k-means and writes the
  assignments to DuckDB. No quarantine, no identity, no registry, no tests.

Run as `python -m bench.references floor|pandas LANDING OUT.duckdb`; prints one JSON line with the
row counts so the harness can check both did the work.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from warehouse.connections import OFFLINE_CONFIG

CSV_TABLES = (
    "crm/customers",
    "crm/consents",
    "erp/accounts",
    "erp/orders",
    "erp/order_lines",
    "erp/payments",
    "support/tickets",
    "erp/fx_rates",
)


def _files(landing: Path, table: str, suffix: str) -> list[str]:
    return sorted(str(p) for p in (landing / table).rglob(f"*{suffix}"))


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def floor(landing: Path, out: Path) -> dict[str, int]:
    """Read every landing file once with DuckDB, per-account RFM in EUR -> `out`."""
    import duckdb

    out.unlink(missing_ok=True)
    con = duckdb.connect(str(out), config=OFFLINE_CONFIG)  # not `connect`: no memory bound, as a plain script
    con.execute("set enable_progress_bar = false")
    counts: dict[str, int] = {}
    csv = "header = true, all_varchar = true, strict_mode = false, ignore_errors = true"
    for table in CSV_TABLES:
        if table in ("erp/orders", "erp/order_lines", "erp/fx_rates"):
            continue  # read once below, by the RFM query
        files = _files(landing, table, ".csv")
        if files:
            counts[table] = con.execute(f"select count(*) from read_csv({_sql_list(files)}, {csv})").fetchall()[0][0]
    events = _files(landing, "events/events", ".jsonl")
    if events:
        counts["events/events"] = con.execute(
            f"select count(*) from read_json({_sql_list(events)}, format = 'newline_delimited', ignore_errors = true)"
        ).fetchall()[0][0]
    orders = _sql_list(_files(landing, "erp/orders", ".csv"))
    lines = _sql_list(_files(landing, "erp/order_lines", ".csv"))
    fx = _sql_list(_files(landing, "erp/fx_rates", ".csv"))
    con.execute(
        f"""create table customer_rfm as
            with o as (
                select order_id, erp_account_id, try_cast(ordered_at as timestamp) as ordered_at, currency
                from read_csv({orders}, {csv})
            ), l as (
                select order_id, sum(try_cast(quantity as double) * try_cast(unit_price as double)
                                     - coalesce(try_cast(discount_amount as double), 0)) as amount
                from read_csv({lines}, {csv}) group by order_id
            ), fx as (
                select try_cast(rate_date as date) as rate_date, currency, try_cast(rate_to_base as double) as rate
                from read_csv({fx}, {csv})
            )
            select o.erp_account_id,
                   date_diff('day', max(o.ordered_at), (select max(ordered_at) from o)) as recency_days,
                   count(*) as frequency,
                   sum(l.amount * coalesce(fx.rate, 1.0)) as monetary_base
            from o
            left join l using (order_id)
            asof left join fx on fx.currency = o.currency and o.ordered_at::date >= fx.rate_date
            where o.erp_account_id is not null and o.ordered_at is not null
            group by o.erp_account_id"""
    )
    counts["customer_rfm"] = con.execute("select count(*) from customer_rfm").fetchall()[0][0]
    con.close()
    return counts


def pandas_reference(landing: Path, out: Path, k: int = 7, seed: int = 7) -> dict[str, int]:
    """Plain pandas + scikit-learn: read, join, RFM, standardise, k-means, write to DuckDB."""
    import duckdb
    import numpy as np
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    def read(table: str, usecols: list[str]) -> pd.DataFrame:
        frames = [
            pd.read_csv(p, usecols=usecols, dtype=str, on_bad_lines="skip") for p in _files(landing, table, ".csv")
        ]
        return pd.concat(frames, ignore_index=True)

    orders = read("erp/orders", ["order_id", "erp_account_id", "ordered_at", "currency"])
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"], errors="coerce")
    orders = orders.dropna(subset=["erp_account_id", "ordered_at"])
    lines = read("erp/order_lines", ["order_id", "quantity", "unit_price", "discount_amount"])
    for col in ("quantity", "unit_price", "discount_amount"):
        lines[col] = pd.to_numeric(lines[col], errors="coerce")
    lines["amount"] = lines["quantity"] * lines["unit_price"] - lines["discount_amount"].fillna(0.0)
    amounts = lines.groupby("order_id", as_index=False)["amount"].sum()
    fx = read("erp/fx_rates", ["rate_date", "currency", "rate_to_base"])
    fx["rate_date"] = pd.to_datetime(fx["rate_date"], errors="coerce")
    fx["rate_to_base"] = pd.to_numeric(fx["rate_to_base"], errors="coerce")
    fx = fx.dropna().sort_values("rate_date")

    df = orders.merge(amounts, on="order_id", how="left")
    df["order_date"] = df["ordered_at"].dt.normalize().astype(fx["rate_date"].dtype)
    df = pd.merge_asof(
        df.sort_values("order_date"),
        fx,
        left_on="order_date",
        right_on="rate_date",
        by="currency",
        direction="backward",
    )
    df["amount_base"] = df["amount"] * df["rate_to_base"].fillna(1.0)
    as_of = df["ordered_at"].max()
    rfm = df.groupby("erp_account_id").agg(
        last_order=("ordered_at", "max"), frequency=("order_id", "count"), monetary_base=("amount_base", "sum")
    )
    rfm["recency_days"] = (as_of - rfm["last_order"]).dt.days
    x = np.column_stack([rfm["recency_days"], np.log1p(rfm["frequency"]), np.log1p(rfm["monetary_base"].clip(lower=0))])
    x = StandardScaler().fit_transform(np.nan_to_num(x))
    rfm["segment"] = KMeans(n_clusters=k, random_state=seed, n_init="auto").fit_predict(x)

    out.unlink(missing_ok=True)
    con = duckdb.connect(str(out), config=OFFLINE_CONFIG)  # not `connect`: no memory bound, as a plain script
    assignments = rfm.reset_index()[["erp_account_id", "recency_days", "frequency", "monetary_base", "segment"]]
    con.register("assignments_df", assignments)
    con.execute("create table customer_segments as select * from assignments_df")
    n = con.execute("select count(*) from customer_segments").fetchall()[0][0]
    con.close()
    return {"erp/orders": len(orders), "erp/order_lines": len(lines), "customer_segments": n}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] not in ("floor", "pandas"):
        print("usage: python -m bench.references floor|pandas LANDING OUT.duckdb", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    fn = floor if argv[0] == "floor" else pandas_reference
    counts = fn(Path(argv[1]), Path(argv[2]))
    print(json.dumps({"reference": argv[0], "seconds": round(time.monotonic() - t0, 2), "rows": counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
