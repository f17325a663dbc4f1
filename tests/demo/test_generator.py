"""The demo generator: deterministic, contract-shaped, with the ground truth it promises."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from demo.generator import BAD_KINDS, SEGMENTS, generate
from warehouse.contracts import CONTRACTS

N = 1500


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(out, customers=N, seed=3)
    return out


def read_csv(out: Path, table: str) -> list[dict]:
    with (out / "landing" / table / "part-0000.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_deterministic_by_seed(out, tmp_path):
    generate(tmp_path / "a", customers=N, seed=3)
    assert digest(tmp_path / "a" / "landing") == digest(out / "landing")
    generate(tmp_path / "b", customers=N, seed=4)
    assert digest(tmp_path / "b" / "landing") != digest(out / "landing")


def test_headers_follow_the_landing_contract(out):
    """Every column the generator writes is the contract's, in its order; only optional columns it has no
    data for are left out (a CRM's gender, birth place, occupation and company; regions, freight, tax,
    instalments, the export's own order status, review answers)."""
    for contract in CONTRACTS:
        path = out / "landing" / contract.landing_path
        (file,) = list(path.iterdir())
        if contract.file_format == "jsonl":
            header = list(json.loads(file.open().readline()))
        else:
            header = next(csv.reader(file.open(newline="")))
        written = [c for c in contract.column_names if c in header]
        assert header == written, contract.qualified_name
        left_out = {c.name for c in contract.columns if c.name not in header}
        assert left_out <= NOT_GENERATED, (contract.qualified_name, left_out)


NOT_GENERATED = {
    "gender",
    "birth_place",
    "occupation",
    "company",
    "region",
    "source_status",
    "shipping_amount",
    "tax_amount",
    "instalments",
    "answered_at",
}


def test_no_contact_mode_strips_every_email_and_phone_of_a_share_of_persons(out, tmp_path):
    generate(tmp_path / "silent", customers=N, seed=3, no_contact_share=0.3)
    truth = pd.read_parquet(tmp_path / "silent" / "truth" / "source_records.parquet")
    silent = pd.DataFrame(read_csv(tmp_path / "silent", "crm/customers"))
    plain = pd.DataFrame(read_csv(out, "crm/customers"))
    person_of = dict(zip(truth["source_record_id"], truth["person_id"], strict=True))
    persons = silent["crm_customer_id"].map(person_of).fillna(-1)
    without = (silent["email"] == "") & (silent["phone"] == "")
    share = without.groupby(persons).all().mean()
    assert 0.2 < share < 0.4
    # everything else is what the plain run wrote: the same rows, the same values (rows planted with a
    # surplus field, whose columns shift, aside)
    shifted = silent[None].notna() if None in silent.columns else pd.Series(False, index=silent.index)
    columns = [c for c in silent.columns if c not in ("email", "phone", None)]
    assert silent.loc[~shifted, columns].equals(plain.loc[~shifted, columns])
    planted = persons == -1  # bad rows copied from a person's row: not a person of the truth
    kept = ~without.groupby(persons).transform("all") & ~shifted & ~planted
    assert silent.loc[kept, [*columns, "email", "phone"]].equals(plain.loc[kept, [*columns, "email", "phone"]])


def test_every_bad_row_is_where_truth_says(out):
    bad = pd.read_parquet(out / "truth" / "bad_rows.parquet")
    assert set(bad["kind"]) <= set(BAD_KINDS)
    assert set(bad["kind"]) == set(BAD_KINDS)  # every kind planted at this size
    for (file,), rows in bad.groupby(["file"]):
        lines = (out / "landing" / file).read_text(encoding="utf-8").split("\n")
        for r in rows.itertuples():
            line = lines[r.record_number] if file.endswith(".csv") else lines[r.record_number - 1]
            assert r.kind == "parse_error" and "broken" in line or str(r.record_key) in line, (file, r)
    manifest = json.loads((out / "truth" / "manifest.json").read_text())
    total = sum(manifest["rows"][t] for t in manifest["rows"] if t != "erp.fx_rates")
    assert 0.005 * total < len(bad) < 0.02 * total


def test_good_ids_unique_and_truth_covers_records(out):
    bad = pd.read_parquet(out / "truth" / "bad_rows.parquet")
    crm = pd.DataFrame(read_csv(out, "crm/customers"))
    bad_lines = set(bad.loc[bad["source_table"] == "crm.customers", "record_number"])
    good = crm[~(crm.index + 1).isin(bad_lines)]
    assert good["crm_customer_id"].is_unique
    src = pd.read_parquet(out / "truth" / "source_records.parquet")
    assert set(good["crm_customer_id"]) == set(src.loc[src["source_table"] == "crm.customers", "source_record_id"])
    persons = pd.read_parquet(out / "truth" / "persons.parquet")
    assert len(persons) == N and set(persons["true_segment"]) == set(SEGMENTS)
    assert (persons["household_id"] != persons["person_id"]).sum() > 0  # households exist
    crm_per_person = src[src["source_table"] == "crm.customers"].groupby("person_id").size()
    assert (crm_per_person > 1).sum() > 0.05 * N  # internal CRM duplicates


def test_currencies_have_rates_and_sources_differ(out):
    fx = pd.DataFrame(read_csv(out, "erp/fx_rates"))
    orders = pd.DataFrame(read_csv(out, "erp/orders"))
    currencies = set(orders["currency"]) - {"XYZ", "", "extra"}  # minus planted bad rows
    assert len(currencies) >= 3 and currencies <= set(fx["currency"])
    src = pd.read_parquet(out / "truth" / "source_records.parquet")
    crm = pd.DataFrame(read_csv(out, "crm/customers")).merge(
        src[src["source_table"] == "crm.customers"], left_on="crm_customer_id", right_on="source_record_id"
    )
    erp = pd.DataFrame(read_csv(out, "erp/accounts")).merge(
        src[src["source_table"] == "erp.accounts"], left_on="erp_account_id", right_on="source_record_id"
    )
    pair = crm.merge(erp, on="person_id", suffixes=("_crm", "_erp"))
    differs = (pair["email_crm"].str.strip().str.lower() != pair["email_erp"].str.strip().str.lower()) & (
        pair["email_erp"] != ""
    )
    assert differs.mean() > 0.03
    assert (pair["first_name_crm"] != pair["first_name_erp"]).mean() > 0.05


def test_events_are_json_lines(out):
    lines = (out / "landing" / "events" / "events" / "part-0000.jsonl").read_text().splitlines()
    parsed = 0
    for line in lines:
        try:
            json.loads(line)
            parsed += 1
        except json.JSONDecodeError:
            pass
    assert parsed > 0.98 * len(lines)
