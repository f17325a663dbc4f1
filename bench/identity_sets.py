"""The public labelled person sets of `../shared/data/identity_benchmarks/`, delivered as CRM customers.

Each set becomes one landing file `crm/customers/<set>.csv` in the landing contract's shape (the columns
a CRM export of those records would carry), plus the truth the identity bench scores against
(`truth/source_records.parquet`, the generator's format: one row per record with its person). The file
then goes through the product's own path: ingest, dbt staging, the identity step. Nothing is cleaned
here: a value the contract rejects (an impossible date such as `1856-86-18`) is quarantined by the
ingest like any user's, and the bench counts that record's true pairs as missed.

| set | records | persons | CRM columns filled |
|---|---|---|---|
| `historical_50k` | 50,578 | 5,156 | first_name, last_name, birth_date, postal_code, birth_place, gender, occupation |
| `fake_1000` | 1,000 | 251 | first_name, last_name, birth_date, city, email |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

# Records of a CRM export need a creation time (contract: required); the sets carry none.
CREATED_AT = "2024-01-01T00:00:00"


@dataclass(frozen=True)
class LabelledSet:
    """A labelled set: its file and how its columns map onto `crm/customers` (contract column -> SQL
    expression over the file's columns)."""

    name: str
    file: str
    columns: dict[str, str]
    person: str = "cluster"
    record: str = "unique_id"
    labels_file: str | None = None  # clerically labelled pairs (unique_id_l, unique_id_r, clerical_match_score)

    def source(self, root: Path) -> Path:
        path = root / self.file
        if not path.is_file():
            raise FileNotFoundError(f"{self.name}: {path} not found (see ../shared/data/identity_benchmarks/README.md)")
        return path


SETS: dict[str, LabelledSet] = {
    s.name: s
    for s in (
        LabelledSet(
            "historical_50k",
            "historical_figures_with_errors_50k.parquet",
            {
                "first_name": "first_name",
                "last_name": "surname",
                "birth_date": "dob",
                "postal_code": "postcode_fake",
                "birth_place": "birth_place",
                "gender": "gender",
                "occupation": "occupation",
            },
        ),
        LabelledSet(
            "fake_1000",
            "fake_1000.csv",
            {"first_name": "first_name", "last_name": "surname", "birth_date": "dob", "city": "city", "email": "email"},
            labels_file="fake_1000_labels.csv",
        ),
    )
}

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "identity_benchmarks"


def write_set(labelled: LabelledSet, root: Path, data: Path) -> int:
    """Write `data/landing/crm/customers/<set>.csv` and `data/truth/source_records.parquet`; returns the
    number of records. Replaces what a previous call wrote for the same set."""
    src = str(labelled.source(root)).replace("'", "''")
    landing = data / "landing" / "crm" / "customers"
    truth = data / "truth"
    landing.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    mapped = ", ".join(f"cast({expr} as varchar) as {column}" for column, expr in labelled.columns.items())
    with duckdb.connect() as con:
        con.execute(
            f"""create temp table records as
                select cast({labelled.record} as varchar) as crm_customer_id, {mapped},
                    '{CREATED_AT}' as created_at, cast({labelled.person} as varchar) as person_id
                from '{src}'"""
        )
        out = str(landing / f"{labelled.name}.csv").replace("'", "''")
        columns = ["crm_customer_id", *labelled.columns, "created_at"]
        con.execute(f"copy (select {', '.join(columns)} from records order by crm_customer_id) to '{out}' (header)")
        out = str(truth / "source_records.parquet").replace("'", "''")
        con.execute(
            f"""copy (select 'crm.customers' as source_table, crm_customer_id as source_record_id, person_id
                      from records) to '{out}' (format parquet)"""
        )
        return con.execute("select count(*) from records").fetchall()[0][0]


def write_labels(labelled: LabelledSet, root: Path, path: Path) -> int:
    """Write the set's clerical labels as the identity labels file (`record_id_l,record_id_r,is_match`,
    record ids in the product's form `crm:<id>`); returns the number of pairs."""
    if labelled.labels_file is None:
        raise ValueError(f"{labelled.name} has no labelled pairs")
    src = str(root / labelled.labels_file).replace("'", "''")
    path.parent.mkdir(parents=True, exist_ok=True)
    out = str(path).replace("'", "''")
    with duckdb.connect() as con:
        con.execute(
            f"""copy (select 'crm:' || unique_id_l as record_id_l, 'crm:' || unique_id_r as record_id_r,
                         clerical_match_score >= 0.5 as is_match
                      from read_csv('{src}')) to '{out}' (header)"""
        )
        return con.execute(f"select count(*) from read_csv('{out}')").fetchall()[0][0]
