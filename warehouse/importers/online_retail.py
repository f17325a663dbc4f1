"""Online Retail II (UCI, CC BY 4.0) -> the landing layout, so the pipeline runs on real transactions.

Real invoice lines of a UK online gift retailer, December 2009 to December 2011 (Chen, 2012,
doi:10.24432/C5CG6D). The importer only changes the *format*; the pipeline's own quality rules judge
the content, so the data set's dirt is quarantined with a reason, never dropped here:

- lines without a customer id (guest checkouts) -> orders without an account: `missing_required`;
- cancellation invoices (`C...`) become orders with status `cancelled`; their negative quantities are
  `negative_quantity`; "adjust bad debt" lines with negative prices are `negative_amount`;
- prices are written as delivered: 18 lines priced 0.001 (cushion pads, bank charges) have more
  decimals than money keeps and are `type_error` (they were silently written as 0.00 before);
- the two yearly files overlap (2010-12-01 .. 2010-12-09): the overlap is taken once, from the first file.

What the data set does not have is written as such: no names, e-mails, consents or tickets (identity
has one ERP account per customer to work with, and no one has a recorded profiling consent: see the
`behavioural_public_data` definition), no product categories (`category` = 'general'), all sales
online (`channel` = 'web') in GBP. Base currency is EUR: `erp/fx_rates` carries the ECB's annual
average reference rates for GBP (2009 0.89094, 2010 0.85784, 2011 0.86788 GBP per EUR) for every day,
an approximation stated here because no daily rates ship with the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse.connections import OFFLINE_CONFIG, use_utc

FIRST = "online_retail_ii_2009_2010.parquet"
SECOND = "online_retail_2010_2011.parquet"
# ECB annual average reference rates, GBP per EUR -> EUR per GBP
GBP_PER_EUR = {2009: 0.89094, 2010: 0.85784, 2011: 0.86788}


@dataclass(frozen=True)
class ImportSummary:
    out_dir: Path
    rows: dict[str, int]

    def describe(self) -> str:
        lines = [f"Online Retail II -> {self.out_dir}"]
        lines += [f"  {t:<18} {n:>10,} rows" for t, n in self.rows.items()]
        lines.append(
            f"  run: segments run --landing {self.out_dir} "
            "--definition ml/segmentation/definitions/behavioural_public_data.yaml"
        )
        return "\n".join(lines)


def import_online_retail(source_dir: Path, out_dir: Path) -> ImportSummary:
    """Write `out_dir/erp/{fx_rates,accounts,orders,order_lines}/part-0000.csv` from the two parquet files;
    refuses (FileExistsError) when `out_dir/erp` already holds anything."""
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    for name in (FIRST, SECOND):
        if not (source_dir / name).exists():
            raise FileNotFoundError(f"{source_dir / name} not found: expected the two Online Retail II parquet files")
    target = out_dir / "erp"
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(
            f"{target} already holds files: the import writes a new landing folder and never replaces one "
            "(files there may be deliveries); choose an empty --out or remove that folder yourself"
        )
    con = use_utc(duckdb.connect(config=OFFLINE_CONFIG))
    first, second = (str(source_dir / n).replace("'", "''") for n in (FIRST, SECOND))
    con.execute(
        f"""create temp table lines as
            with a as (
                select Invoice as invoice, StockCode as stock_code, Quantity as quantity,
                       cast(InvoiceDate as timestamp) as invoiced_at, Price as price,
                       "Customer ID" as customer, Country as country, 1 as part, row_number() over () as n
                from read_parquet('{first}')
            ),
            b as (
                select InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice, CustomerID, Country, 2,
                       row_number() over ()
                from read_parquet('{second}')
                where InvoiceDate > (select max(invoiced_at) from a)
            )
            select * from a union all select * from b"""
    )
    tables = {
        "fx_rates": f"""
            select strftime(d, '%Y-%m-%d') as rate_date, c.currency,
                   case c.currency when 'EUR' then '1.000000'
                        else printf('%.6f', 1.0 / case year(d)
                            {" ".join(f"when {y} then {r}" for y, r in GBP_PER_EUR.items())} end)
                   end as rate_to_base
            from range(date '2009-11-01', date '2012-01-01', interval 1 day) as t(d)
            cross join (values ('EUR'), ('GBP')) as c(currency)
            order by 1, 2""",
        "accounts": """
            select 'OR' || cast(cast(customer as bigint) as varchar) as erp_account_id,
                   null as crm_customer_id, null as first_name, null as last_name, null as email, null as phone,
                   null as street, null as city, null as postal_code, mode(country) as country,
                   strftime(min(invoiced_at), '%Y-%m-%dT%H:%M:%S') as created_at
            from lines where customer is not null group by customer order by 1""",
        "orders": """
            select invoice as order_id,
                   case when any_value(customer) is not null
                        then 'OR' || cast(cast(any_value(customer) as bigint) as varchar) end as erp_account_id,
                   strftime(min(invoiced_at), '%Y-%m-%dT%H:%M:%S') as ordered_at, 'web' as channel, 'GBP' as currency,
                   case when invoice like 'C%' then 'cancelled' else 'completed' end as status
            from lines group by invoice order by 1""",
        "order_lines": """
            select invoice || '-'
                       || lpad(cast(row_number() over (partition by invoice order by part, n) as varchar), 4, '0')
                       as order_line_id,
                   invoice as order_id, stock_code as product_id, 'general' as category, quantity,
                   -- as delivered: a price with more decimals than money keeps is the ingest's to reject
                   case when round(price, 2) = price then printf('%.2f', price) else cast(price as varchar) end
                       as unit_price,
                   null as discount_amount
            from lines order by invoice, part, n""",
    }
    rows = {}
    for table, sql in tables.items():
        path = out_dir / "erp" / table / "part-0000.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"copy ({sql}) to '{str(path).replace(chr(39), chr(39) * 2)}' (header true)")
        rows[f"erp.{table}"] = con.execute(f"select count(*) from ({sql})").fetchall()[0][0]
    con.close()
    return ImportSummary(out_dir, rows)
