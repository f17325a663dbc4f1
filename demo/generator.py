"""Synthetic CRM / ERP / support / events landing data with planted ground truth.

`generate()` writes `out_dir/landing/...` in the landing contract's layout and `out_dir/truth/...`,
which the pipeline never reads: the true person behind every source record, each person's true
behavioural segment, and every deliberately bad row with its kind. Deterministic by seed; vectorised
with numpy and pyarrow (Python only loops over tables, segments and kinds, never over rows).

What it plants:
- persons in 7 behavioural segments with distinct purchase, discount, channel and support patterns;
- the same person in CRM, ERP and support with realistic differences (typos, nicknames, dropped
  accents, case, changed e-mail, phone formats, missing cross-references), internal CRM duplicates,
  and households that share a phone or e-mail without being the same person;
- placeholder e-mails and phones (test@..., info@..., 0000000000) shared by unrelated persons;
- about `bad_row_rate` extra bad rows per table, of the kinds listed in `BAD_KINDS`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from demo import names as N

SEGMENTS = ("champions", "loyal_regulars", "discount_driven", "at_risk", "dormant", "new", "support_heavy")
SEGMENT_SHARES = (0.10, 0.20, 0.15, 0.15, 0.20, 0.10, 0.10)
# per segment: relative order rate, active window in days before as_of (start range, end range),
# basket size factor, discounted-line probability, return probability, channel mix (web, app, store, phone),
# relative ticket rate, CSAT centre, relative event rate
PROFILES = {
    "champions": {
        "orders": 3.0,
        "start": (500, 1300),
        "end": (0, 20),
        "basket": 1.6,
        "disc": 0.08,
        "ret": 0.03,
        "chan": (0.45, 0.45, 0.07, 0.03),
        "tickets": 0.5,
        "csat": 4.5,
        "events": 2.0,
    },
    "loyal_regulars": {
        "orders": 1.6,
        "start": (500, 1300),
        "end": (0, 45),
        "basket": 1.0,
        "disc": 0.08,
        "ret": 0.03,
        "chan": (0.35, 0.10, 0.50, 0.05),
        "tickets": 0.5,
        "csat": 4.2,
        "events": 1.0,
    },
    "discount_driven": {
        "orders": 1.2,
        "start": (300, 1300),
        "end": (0, 90),
        "basket": 0.8,
        "disc": 0.75,
        "ret": 0.05,
        "chan": (0.60, 0.30, 0.08, 0.02),
        "tickets": 0.6,
        "csat": 3.9,
        "events": 1.5,
    },
    "at_risk": {
        "orders": 1.1,
        "start": (600, 1300),
        "end": (180, 400),
        "basket": 1.1,
        "disc": 0.10,
        "ret": 0.04,
        "chan": (0.40, 0.20, 0.35, 0.05),
        "tickets": 0.6,
        "csat": 3.6,
        "events": 0.5,
    },
    "dormant": {
        "orders": 0.25,
        "start": (700, 1400),
        "end": (420, 700),
        "basket": 0.8,
        "disc": 0.08,
        "ret": 0.04,
        "chan": (0.40, 0.10, 0.40, 0.10),
        "tickets": 0.2,
        "csat": 3.8,
        "events": 0.2,
    },
    "new": {
        "orders": 0.25,
        "start": (10, 60),
        "end": (0, 10),
        "basket": 1.0,
        "disc": 0.10,
        "ret": 0.02,
        "chan": (0.50, 0.40, 0.08, 0.02),
        "tickets": 0.4,
        "csat": 4.2,
        "events": 1.5,
    },
    "support_heavy": {
        "orders": 1.0,
        "start": (300, 1300),
        "end": (0, 90),
        "basket": 1.0,
        "disc": 0.10,
        "ret": 0.25,
        "chan": (0.40, 0.20, 0.30, 0.10),
        "tickets": 6.0,
        "csat": 2.0,
        "events": 1.0,
    },
}
BAD_KINDS = (
    "parse_error",
    "type_error",
    "missing_required",
    "negative_quantity",
    "negative_amount",
    "unknown_currency",
    "future_date",
    "invalid_value",
    "orphan_reference",
    "duplicate_key",
)
DATA_START = np.datetime64("2023-01-01T00:00:00")
PARSE_MARKER = "__BROKEN_LINE__"


@dataclass
class GenerationSummary:
    out_dir: Path
    customers: int
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    bad_rows: dict[str, int] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    def describe(self) -> str:
        lines = [
            f"Generated {self.customers:,} persons (seed {self.seed}) "
            f"in {self.elapsed_seconds:.1f} s into {self.out_dir}"
        ]
        lines += [f"  {t:<20} {n:>12,} rows" for t, n in self.rows.items()]
        lines.append(
            f"  bad rows planted: {sum(self.bad_rows.values()):,} ("
            + ", ".join(f"{k} {v}" for k, v in sorted(self.bad_rows.items()))
            + ")"
        )
        lines.append(f"  landing: {self.out_dir / 'landing'}   truth: {self.out_dir / 'truth'}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# small vectorised helpers


def _s(values) -> pd.Series:
    return pd.Series(values, dtype="str")


def _ts(arr: np.ndarray) -> np.ndarray:
    """datetime64 -> 'YYYY-MM-DDTHH:MM:SS'."""
    return np.datetime_as_string(arr.astype("datetime64[s]"), unit="s")


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> np.ndarray:
    return np.asarray(pool, dtype=object)[rng.integers(0, len(pool), n)]


def _fold(s: pd.Series) -> pd.Series:
    for src, dst in N.ASCII_FOLD.items():
        s = s.str.replace(src, dst, regex=False)
    return s


def _typo(rng: np.random.Generator, s: pd.Series) -> pd.Series:
    """Drop one letter at a random inner position (vectorised with string slicing per length)."""
    s = s.astype("str")
    lengths = s.str.len().to_numpy()
    pos = np.maximum(1, (rng.random(len(s)) * np.maximum(lengths - 1, 1)).astype(int))
    out = s.copy()
    for p in np.unique(pos):  # loop over a handful of positions, not rows
        m = pos == p
        out[m] = s[m].str.slice(0, p) + s[m].str.slice(p + 1)
    return out


def _id(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width)).astype(object)


# ---------------------------------------------------------------------------------------------
# persons


def _persons(rng: np.random.Generator, n: int, as_of: np.datetime64) -> pd.DataFrame:
    countries = np.array(list(N.COUNTRY_SHARES))
    country = countries[rng.choice(len(countries), n, p=list(N.COUNTRY_SHARES.values()))]
    region = pd.Series(country).map({c: v[0] for c, v in N.COUNTRIES.items()}).to_numpy()
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    street = np.empty(n, dtype=object)
    for r in N.FIRST_NAMES:
        m = region == r
        first[m] = _pick(rng, N.FIRST_NAMES[r], m.sum())
        last[m] = _pick(rng, N.LAST_NAMES[r], m.sum())
        street[m] = _pick(rng, N.STREETS[r], m.sum())
    city = np.empty(n, dtype=object)
    postal = np.empty(n, dtype=object)
    provider = np.empty(n, dtype=object)
    cc = np.empty(n, dtype=object)
    for c, (_, _, code, cities, providers) in N.COUNTRIES.items():
        m = country == c
        k = rng.integers(0, len(cities), m.sum())
        city[m] = np.array([x[0] for x in cities], dtype=object)[k]
        postal[m] = np.char.add(
            np.array([x[1] for x in cities])[k], np.char.zfill(rng.integers(0, 999, m.sum()).astype(str), 3)
        )
        provider[m] = _pick(rng, providers, m.sum())
        cc[m] = code
    segment = np.array(SEGMENTS)[rng.choice(len(SEGMENTS), n, p=SEGMENT_SHARES)]
    pid = np.arange(n)
    local = (
        _fold(_s(first)).str.lower()
        + "."
        + _fold(_s(last)).str.lower().str.replace(" ", "", regex=False)
        + pid.astype(str)
    )
    email = local + "@" + _s(provider)
    area = rng.integers(20, 99, n).astype(str)
    number = np.char.zfill(rng.integers(0, 9_999_999, n).astype(str), 7)
    birth = np.datetime64("1950-01-01") + rng.integers(0, 365 * 55, n).astype("timedelta64[D]")
    df = pd.DataFrame(
        {
            "person_id": pid,
            "true_segment": segment,
            "first_name": first,
            "last_name": last,
            "email": email.to_numpy(),
            "cc": cc,
            "area": area,
            "number": number,
            "street": _s(street) + " " + _s(rng.integers(1, 120, n).astype(str)),
            "city": city,
            "postal_code": postal,
            "country": country,
            "birth_date": birth,
            "household_id": pid,
        }
    )
    # Households: ~3% of persons live with the previous person: same address and last name, and they
    # share the landline or a family e-mail, but they are different people.
    hh = np.flatnonzero(rng.random(n) < 0.03)
    hh = hh[hh > 0]
    prev = hh - 1
    for col in ("street", "city", "postal_code", "country", "last_name", "cc"):
        df.loc[hh, col] = df.loc[prev, col].to_numpy()
    df.loc[hh, "household_id"] = prev
    share_phone = rng.random(len(hh)) < 0.5
    df.loc[hh[share_phone], ["area", "number"]] = df.loc[prev[share_phone], ["area", "number"]].to_numpy()
    family = (
        "family."
        + _fold(_s(df.loc[prev[~share_phone], "last_name"].to_numpy())).str.lower().str.replace(" ", "", regex=False)
        + prev[~share_phone].astype(str)
        + "@gmail.com"
    )
    df.loc[hh[~share_phone], "email"] = family.to_numpy()
    df.loc[prev[~share_phone], "email"] = family.to_numpy()
    df["phone_e164"] = "+" + df["cc"] + df["area"] + df["number"]
    return df


def _phone_variants(rng: np.random.Generator, p: pd.DataFrame, idx: np.ndarray) -> np.ndarray:
    """The same phone number written in one of four common formats."""
    cc, area, num = (_s(p[c].to_numpy()[idx]) for c in ("cc", "area", "number"))
    fmt = rng.integers(0, 4, len(idx))
    variants = [
        "+" + cc + " " + area + " " + num,  # +49 30 1234567
        "0" + area + " " + num,  # 030 1234567 (national)
        "00" + cc + area + num,  # 0049301234567
        "(0" + area + ") " + num.str.slice(0, 3) + "-" + num.str.slice(3),  # (030) 123-4567
    ]
    out = variants[0].to_numpy(dtype=object)
    for f in (1, 2, 3):
        out[fmt == f] = variants[f].to_numpy(dtype=object)[fmt == f]
    return out.astype(object)


# ---------------------------------------------------------------------------------------------
# tables


def _crm_customers(
    rng, p: pd.DataFrame, duplicate_rate: float, created: np.ndarray, as_of
) -> tuple[pd.DataFrame, np.ndarray]:
    n = len(p)
    dup = np.flatnonzero(rng.random(n) < duplicate_rate)
    person = np.concatenate([np.arange(n), dup])
    m = len(person)
    first = _s(p["first_name"].to_numpy()[person])
    last = _s(p["last_name"].to_numpy()[person])
    email = _s(p["email"].to_numpy()[person])
    is_dup = np.arange(m) >= n
    # duplicates differ a little: a typo, a nickname, folded accents or a changed e-mail
    noise = rng.random(m)
    t = is_dup & (noise < 0.3)
    first[t] = _typo(rng, first[t]).to_numpy()
    t = is_dup & (noise >= 0.3) & (noise < 0.55)
    first[t] = first[t].map(lambda x: N.NICKNAMES.get(x, x)).to_numpy()
    t = is_dup & (noise >= 0.55) & (noise < 0.75)
    last[t] = _fold(last[t]).to_numpy()
    t = is_dup & (noise >= 0.75)
    email[t] = (email[t].str.split("@").str[0] + "@outlook.com").to_numpy()
    email[rng.random(m) < 0.03] = None
    phone = _phone_variants(rng, p, person)
    phone[rng.random(m) < 0.15] = None
    created_at = created[person] + np.where(is_dup, rng.integers(30, 400, m), 0).astype("timedelta64[D]")
    created_at = np.minimum(created_at, as_of)
    updated = created_at + rng.integers(0, 300, m).astype("timedelta64[D]")
    updated = np.where(rng.random(m) < 0.5, np.minimum(updated, as_of), np.datetime64("NaT"))
    order = rng.permutation(m)  # CRM ids must not reveal persons
    crm_id = np.empty(m, dtype=object)
    crm_id[order] = _id("C", np.arange(1, m + 1), 7)
    df = (
        pd.DataFrame(
            {
                "crm_customer_id": crm_id,
                "first_name": first.to_numpy(),
                "last_name": last.to_numpy(),
                "email": email.to_numpy(),
                "phone": phone,
                "street": p["street"].to_numpy()[person],
                "city": p["city"].to_numpy()[person],
                "postal_code": p["postal_code"].to_numpy()[person],
                "country": p["country"].to_numpy()[person],
                "birth_date": np.datetime_as_string(p["birth_date"].to_numpy()[person].astype("datetime64[D]")),
                "created_at": _ts(created_at),
                "updated_at": np.where(np.isnat(updated), None, _ts(updated)),
            }
        )
        .iloc[np.argsort(order)]
        .reset_index(drop=True)
    )
    person = person[np.argsort(order)]
    return df, person


def _erp_accounts(rng, p, crm: pd.DataFrame, crm_person: np.ndarray, buyers: np.ndarray, created: np.ndarray, as_of):
    n = len(p)
    has = buyers | (rng.random(n) < 0.5)
    base = np.flatnonzero(has)
    second = base[rng.random(len(base)) < 0.03]
    person = np.concatenate([base, second])
    m = len(person)
    first = _s(p["first_name"].to_numpy()[person])
    last = _s(p["last_name"].to_numpy()[person])
    email = _s(p["email"].to_numpy()[person])
    r = rng.random(m)
    first[r < 0.05] = _typo(rng, first[r < 0.05]).to_numpy()
    nick = (r >= 0.05) & (r < 0.15)
    first[nick] = first[nick].map(lambda x: N.NICKNAMES.get(x, x)).to_numpy()
    fold = rng.random(m) < 0.3
    first[fold], last[fold] = _fold(first[fold]).to_numpy(), _fold(last[fold]).to_numpy()
    upper = rng.random(m) < 0.05
    last[upper] = last[upper].str.upper().to_numpy()
    e = rng.random(m)
    changed = e < 0.10
    new_provider = _pick(rng, ["gmail.com", "outlook.com", "icloud.com", "proton.me"], changed.sum())
    email[changed] = (email[changed].str.split("@").str[0].str.replace(".", "_", regex=False) + "@").to_numpy(
        dtype=object
    ) + new_provider
    cased = (e >= 0.10) & (e < 0.20)
    email[cased] = (" " + email[cased].str.capitalize() + " ").to_numpy()
    email[(e >= 0.20) & (e < 0.24)] = None
    # CRM reference: the person's first CRM record (60%), sometimes another person's (3% of those)
    first_crm = pd.Series(crm["crm_customer_id"].to_numpy()).groupby(crm_person).first()
    ref = first_crm.reindex(person).to_numpy().astype(object)
    ref[rng.random(m) >= 0.60] = None
    wrong = (rng.random(m) < 0.03) & pd.notna(ref)
    ref[wrong] = crm["crm_customer_id"].to_numpy()[rng.integers(0, len(crm), wrong.sum())]
    phone = _phone_variants(rng, p, person)
    phone[rng.random(m) < 0.2] = None
    created_at = np.minimum(created[person] + rng.integers(0, 20, m).astype("timedelta64[D]"), as_of)
    df = pd.DataFrame(
        {
            "erp_account_id": _id("A", np.arange(1, m + 1), 7),
            "crm_customer_id": ref,
            "first_name": first.to_numpy(),
            "last_name": last.to_numpy(),
            "email": email.to_numpy(),
            "phone": phone,
            "street": _fold(_s(p["street"].to_numpy()[person])).to_numpy(),
            "city": p["city"].to_numpy()[person],
            "postal_code": p["postal_code"].to_numpy()[person],
            "country": p["country"].to_numpy()[person],
            "created_at": _ts(created_at),
        }
    )
    return df, person


def _activity(rng, p: pd.DataFrame, orders_per_customer: float, as_of) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per person: number of orders, active window start/end (days before as_of)."""
    n = len(p)
    seg = p["true_segment"].to_numpy()
    rate = np.array([PROFILES[s]["orders"] for s in SEGMENTS])
    norm = orders_per_customer / float(np.dot(rate, SEGMENT_SHARES))
    count = np.zeros(n, dtype=int)
    start = np.zeros(n)
    end = np.zeros(n)
    max_back = float((as_of - DATA_START) / np.timedelta64(1, "D"))
    for s in SEGMENTS:
        m = seg == s
        k = m.sum()
        pr = PROFILES[s]
        start[m] = np.minimum(rng.uniform(*pr["start"], k), max_back)
        end[m] = np.minimum(rng.uniform(*pr["end"], k), start[m] - 1).clip(0)
        if s == "new":
            count[m] = 1 + (rng.random(k) < 0.4)
        else:
            count[m] = np.maximum(1, rng.poisson(pr["orders"] * norm * (start[m] - end[m]) / 800.0 + 0.3))
    return count, start, end


def _dict(pool, codes: np.ndarray) -> pa.DictionaryArray:
    """A categorical column: cheap to build, DuckDB turns it into text while writing."""
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype("int32")), pa.array(list(pool), pa.string()))


def _orders(rng, p, acct_person: np.ndarray, count, start, end, lines_per_order: float, as_of, fx_levels):
    """Orders, order lines and payments as typed Arrow tables (ids as integers, formatted on write)."""
    seg_codes = pd.Categorical(p["true_segment"], categories=SEGMENTS).codes
    person = np.repeat(np.arange(len(p)), count)
    k = len(person)
    first_acct = pd.Series(np.arange(len(acct_person))).groupby(acct_person).first()
    acct_idx = first_acct.reindex(person).to_numpy()  # each person orders on their first account
    days_back = end[person] + rng.random(k) * (start[person] - end[person])
    ordered = np.maximum(as_of - (days_back * 86400).astype("timedelta64[s]"), DATA_START)
    oseg = seg_codes[person]
    chan = np.empty(k, dtype=np.int32)
    status = np.empty(k, dtype=np.int32)  # 0 completed, 1 cancelled, 2 returned
    basket = np.empty(k)
    disc_p = np.empty(k)
    for i, s in enumerate(SEGMENTS):
        m = oseg == i
        pr = PROFILES[s]
        chan[m] = rng.choice(4, m.sum(), p=pr["chan"])
        u = rng.random(m.sum())
        status[m] = np.where(u < pr["ret"], 2, np.where(u < pr["ret"] + 0.03, 1, 0))
        basket[m] = pr["basket"]
        disc_p[m] = pr["disc"]
    currencies = list(N.FX_LEVELS)
    country_currency = {c: currencies.index(v[1]) for c, v in N.COUNTRIES.items()}
    currency = pd.Series(p["country"].to_numpy()).map(country_currency).to_numpy()[person]
    orders = pa.table(
        {
            "order_id": np.arange(1, k + 1),
            "erp_account_id": acct_idx + 1,
            "ordered_at": ordered,
            "channel": _dict(["web", "app", "store", "phone"], chan),
            "currency": _dict(currencies, currency),
            "status": _dict(["completed", "cancelled", "returned"], status),
        }
    )
    n_lines = 1 + rng.poisson(np.maximum(lines_per_order - 1, 0) * basket)
    line_order = np.repeat(np.arange(k), n_lines)
    L = len(line_order)
    product = rng.integers(0, 500, L)
    category = product % len(N.CATEGORIES)
    price_base = np.array(N.CATEGORY_PRICE)[category] * np.exp(((product * 7919) % 1000) / 1000.0 - 0.5)
    rate = np.array([fx_levels[c] for c in currencies])[currency[line_order]]
    unit_price = np.round(price_base / rate, 2)
    qty = 1 + rng.poisson(0.4 * basket[line_order])
    discounted = rng.random(L) < disc_p[line_order]
    discount = np.where(discounted, np.round(unit_price * qty * rng.uniform(0.1, 0.4, L), 2), 0.0)
    lines = pa.table(
        {
            "order_line_id": np.arange(1, L + 1),
            "order_id": line_order + 1,
            "product_id": product,
            "category": _dict(N.CATEGORIES, category),
            "quantity": qty,
            "unit_price": unit_price,
            "discount_amount": pa.array(discount, mask=~discounted),
        }
    )
    net = np.bincount(line_order, weights=unit_price * qty - discount, minlength=k)
    paid = np.flatnonzero(status != 1)
    payments = pa.table(
        {
            "payment_id": np.arange(1, len(paid) + 1),
            "order_id": paid + 1,
            "paid_at": np.minimum(ordered[paid] + rng.integers(0, 3600, len(paid)).astype("timedelta64[s]"), as_of),
            "amount": net[paid],
            "currency": _dict(currencies, currency[paid]),
            "method": _dict(
                ["card", "paypal", "bank_transfer", "gift_card"], rng.choice(4, len(paid), p=[0.6, 0.25, 0.1, 0.05])
            ),
        }
    )
    return orders, lines, payments


ID_FORMATS = {
    "erp/orders": {"order_id": ("O", 9), "erp_account_id": ("A", 7)},
    "erp/order_lines": {"order_line_id": ("L", 10), "order_id": ("O", 9), "product_id": ("P", 4)},
    "erp/payments": {"payment_id": ("Y", 9), "order_id": ("O", 9)},
    "crm/consents": {"consent_id": ("K", 8)},
    "events/events": {"event_id": ("E", 10), "anonymous_id": ("anon-", 0)},
    "feedback/reviews": {"review_id": ("R", 8), "order_id": ("O", 9)},
}


def _reviews(rng, orders: pa.Table, as_of) -> pa.Table:
    """Reviews of about a quarter of the completed orders, a day to two weeks after the order, scores 1..5.
    One review in twenty also covers the account's next order (one review id, two orders: the table's
    key is the pair, as in real review exports)."""
    order_id = orders.column("order_id").to_numpy()
    account = orders.column("erp_account_id").to_numpy()
    ordered = orders.column("ordered_at").to_numpy()
    status = orders.column("status").to_pandas().astype(str).to_numpy()
    completed = np.flatnonzero(status == "completed")
    reviewed = completed[rng.random(len(completed)) < 0.25]
    n = len(reviewed)
    created = np.minimum(ordered[reviewed] + rng.integers(86400, 14 * 86400, n).astype("timedelta64[s]"), as_of)
    score = rng.choice(5, n, p=[0.06, 0.06, 0.13, 0.30, 0.45]) + 1
    nxt = np.minimum(reviewed + 1, len(order_id) - 1)
    both = (rng.random(n) < 0.05) & (nxt > reviewed) & (account[nxt] == account[reviewed])
    both &= status[nxt] == "completed"
    created[both] = np.minimum(np.maximum(created[both], ordered[nxt[both]]), as_of)
    return pa.table(
        {
            "review_id": np.concatenate([np.arange(1, n + 1), np.flatnonzero(both) + 1]),
            "order_id": np.concatenate([order_id[reviewed], order_id[nxt[both]]]),
            "score": np.concatenate([score, score[both]]),
            "created_at": np.concatenate([created, created[both]]),
        }
    )


def _fx_rates(rng, as_of) -> pd.DataFrame:
    days = np.arange(np.datetime64("2022-12-01"), as_of.astype("datetime64[D]") + 1)
    frames = []
    for cur, level in N.FX_LEVELS.items():
        rate = np.ones(len(days)) if cur == "EUR" else level * np.exp(np.cumsum(rng.normal(0, 0.004, len(days))))
        frames.append(
            pd.DataFrame(
                {"rate_date": np.datetime_as_string(days), "currency": cur, "rate_to_base": np.char.mod("%.6f", rate)}
            )
        )
    return pd.concat(frames, ignore_index=True)


def _tickets(rng, p, acct, acct_person, start, end, tickets_per_customer: float, as_of):
    seg = p["true_segment"].to_numpy()
    rate = np.array([PROFILES[s]["tickets"] for s in SEGMENTS])
    norm = tickets_per_customer / float(np.dot(rate, SEGMENT_SHARES))
    lam = pd.Series(seg).map({s: PROFILES[s]["tickets"] * norm for s in SEGMENTS}).to_numpy()
    person = np.repeat(np.arange(len(p)), rng.poisson(lam))
    k = len(person)
    days_back = end[person] + rng.random(k) * (start[person] - end[person])
    created = np.maximum(as_of - (days_back * 86400).astype("timedelta64[s]"), DATA_START)
    resolved = created + rng.integers(600, 5 * 86400, k).astype("timedelta64[s]")
    unresolved = (rng.random(k) < 0.08) | (resolved > as_of)
    csat_centre = pd.Series(seg[person]).map({s: PROFILES[s]["csat"] for s in SEGMENTS}).to_numpy()
    csat = np.clip(np.round(rng.normal(csat_centre, 0.8)), 1, 5).astype(int).astype(str).astype(object)
    csat[(rng.random(k) < 0.35) | unresolved] = ""
    email = _s(p["email"].to_numpy()[person])
    r = rng.random(k)
    email[r < 0.15] = email[r < 0.15].str.upper().to_numpy()
    email[(r >= 0.15) & (r < 0.22)] = None
    first_acct = pd.Series(acct["erp_account_id"].to_numpy()).groupby(acct_person).first()
    account = first_acct.reindex(person).to_numpy().astype(object)
    account[rng.random(k) >= 0.7] = None
    name = _s(p["first_name"].to_numpy()[person]) + " " + _s(p["last_name"].to_numpy()[person])
    phone = _phone_variants(rng, p, person)
    phone[rng.random(k) < 0.6] = None
    order = np.argsort(created, kind="stable")
    df = pd.DataFrame(
        {
            "ticket_id": _id("T", np.arange(1, k + 1), 8),
            "requester_email": email.to_numpy()[order],
            "requester_name": name.to_numpy()[order],
            "requester_phone": phone[order],
            "erp_account_id": account[order],
            "created_at": _ts(created)[order],
            "resolved_at": np.where(unresolved, "", _ts(np.minimum(resolved, as_of)))[order],
            "channel": np.array(["email", "phone", "chat", "web"], dtype=object)[
                rng.choice(4, k, p=[0.4, 0.25, 0.25, 0.1])
            ],
            "category": _pick(rng, N.TICKET_CATEGORIES, k),
            "priority": np.array(["low", "normal", "high", "urgent"], dtype=object)[
                rng.choice(4, k, p=[0.2, 0.6, 0.15, 0.05])
            ],
            "csat_score": csat[order],
        }
    )
    return df, person[order]


def _consents(rng, crm: pd.DataFrame, as_of) -> pa.Table:
    """Consent events per CRM record and purpose; about 5% of grants are revoked later."""
    m = len(crm)
    created = crm["created_at"].to_numpy().astype("datetime64[s]")
    rec, purpose, granted, at = [], [], [], []
    for code, share in enumerate((0.6, 0.3, 0.85)):  # marketing_email, marketing_sms, profiling
        g = rng.random(m) < share
        revoke = np.flatnonzero(g & (rng.random(m) < 0.05))
        rec += [np.arange(m), revoke]
        purpose += [np.full(m, code), np.full(len(revoke), code)]
        granted += [g, np.zeros(len(revoke), dtype=bool)]
        at += [
            created,
            np.minimum(created[revoke] + rng.integers(30, 300, len(revoke)).astype("timedelta64[D]"), as_of),
        ]
    rec = np.concatenate(rec)
    return pa.table(
        {
            "consent_id": np.arange(1, len(rec) + 1),
            "crm_customer_id": pa.array(crm["crm_customer_id"].to_numpy(dtype=object)).take(pa.array(rec)),
            "purpose": _dict(["marketing_email", "marketing_sms", "profiling"], np.concatenate(purpose)),
            "is_granted": np.concatenate(granted),
            "recorded_at": np.concatenate(at),
        }
    )


def _events(rng, p, crm, crm_person, start, end, events_per_customer: float, as_of):
    """Web/app events: ~40% logged in (CRM id), ~10% identified by e-mail only, the rest anonymous."""
    seg_codes = pd.Categorical(p["true_segment"], categories=SEGMENTS).codes
    ev_rate = np.array([PROFILES[s]["events"] for s in SEGMENTS])
    lam = ev_rate[seg_codes] * events_per_customer / float(np.dot(ev_rate, SEGMENT_SHARES))
    person = np.repeat(np.arange(len(p)), rng.poisson(lam))
    k = len(person)
    days_back = end[person] * 0.5 + rng.random(k) * (start[person] - end[person] * 0.5)
    occurred = np.maximum(as_of - (days_back * 86400).astype("timedelta64[s]"), DATA_START)
    order = np.argsort(occurred, kind="stable")
    person, occurred = person[order], occurred[order]
    first_crm = pd.Series(np.arange(len(crm))).groupby(crm_person).first().reindex(np.arange(len(p))).to_numpy()
    ident = rng.random(k)
    logged_in = ident < 0.4
    by_email = (ident >= 0.4) & (ident < 0.5)
    crm_ids = pa.array(crm["crm_customer_id"].to_numpy(dtype=object))
    emails = pa.array(p["email"].to_numpy(dtype=object))
    app_share = np.array([PROFILES[s]["chan"][1] / (PROFILES[s]["chan"][0] + PROFILES[s]["chan"][1]) for s in SEGMENTS])
    is_app = rng.random(k) < app_share[seg_codes[person]]
    device = np.where(is_app, 1, rng.choice(3, k, p=[0.6, 0.3, 0.1]))
    table = pa.table(
        {
            "event_id": np.arange(1, k + 1),
            "occurred_at": occurred,
            "anonymous_id": person * 7 + is_app,
            "crm_customer_id": crm_ids.take(pa.array(first_crm[person], mask=~logged_in)),
            "email": emails.take(pa.array(person, mask=~by_email)),
            "event_type": _dict(
                ["page_view", "product_view", "add_to_cart", "checkout", "login"],
                rng.choice(5, k, p=[0.45, 0.3, 0.12, 0.05, 0.08]),
            ),
            "device": _dict(["desktop", "mobile", "tablet"], device),
            "channel": _dict(["web", "app"], is_app.astype(int)),
        }
    )
    return table, person, logged_in | by_email


def _drop_contacts(
    silent, crm, crm_person, accounts, acct_person, tickets, ticket_person, events, event_person, event_identified
):
    """Remove every e-mail and phone of the `silent` persons (a boolean per person) in place; their
    devices identified only by an e-mail become anonymous. Returns (events, event_identified)."""
    for df, person, columns in (
        (crm, crm_person, ("email", "phone")),
        (accounts, acct_person, ("email", "phone")),
        (tickets, ticket_person, ("requester_email", "requester_phone")),
    ):
        rows = silent[person]
        for column in columns:
            df.loc[rows, column] = None
    rows = silent[event_person]
    email = events.column("email")
    by_email_only = (
        rows
        & ~pc.is_null(email).to_numpy(zero_copy_only=False)
        & pc.is_null(events.column("crm_customer_id")).to_numpy(zero_copy_only=False)
    )
    email = pa.array(np.where(rows, None, email.to_numpy(zero_copy_only=False)), type=email.type)
    events = events.set_column(events.schema.get_field_index("email"), "email", email)
    return events, event_identified & ~by_email_only


# Values people type when a form insists: shared by many unrelated persons, they must never link them.
PLACEHOLDER_EMAILS = ["info@company.com", "test@test.com", "noreply@shop.com", "none@none.com", "n/a"]
PLACEHOLDER_PHONES = ["0000000000", "1234567890", "+49 000 0000000"]


def _plant_placeholders(rng: np.random.Generator, crm: pd.DataFrame, accounts: pd.DataFrame, rate: float) -> None:
    """Replace about `rate` of CRM and ERP e-mails and phones with placeholders, in place. Uses its
    own random stream so the rest of the data is the same with or without placeholders."""
    for df in (crm, accounts):
        for column, pool in (("email", PLACEHOLDER_EMAILS), ("phone", PLACEHOLDER_PHONES)):
            hit = np.flatnonzero(rng.random(len(df)) < rate)
            df.loc[hit, column] = np.asarray(pool, dtype=object)[rng.integers(0, len(pool), len(hit))]


# ---------------------------------------------------------------------------------------------
# bad rows

# table -> {kind: (column, bad value or callable(rng, n) -> values)}; the first column is the key
CORRUPTIONS = {
    "crm/customers": {
        "parse_error": ("first_name", PARSE_MARKER),
        "type_error": ("created_at", "yesterday"),
        "missing_required": ("created_at", ""),
        "future_date": ("created_at", "2099-03-01T10:00:00"),
        "duplicate_key": ("first_name", "Duplicate"),
    },
    "crm/consents": {
        "type_error": ("is_granted", "maybe"),
        "missing_required": ("purpose", ""),
        "invalid_value": ("purpose", "telepathy"),
        "orphan_reference": ("crm_customer_id", "C9999999"),
        "duplicate_key": ("purpose", "marketing_sms"),
    },
    "erp/accounts": {
        "parse_error": ("last_name", PARSE_MARKER),
        "type_error": ("created_at", "last week"),
        "missing_required": ("created_at", ""),
        "future_date": ("created_at", "2099-01-15T08:00:00"),
        "duplicate_key": ("first_name", "Duplicate"),
    },
    "erp/orders": {
        "parse_error": ("channel", PARSE_MARKER),
        "type_error": ("ordered_at", "31/02/2024"),
        "missing_required": ("status", ""),
        "unknown_currency": ("currency", "XYZ"),
        "future_date": ("ordered_at", "2099-06-01T12:00:00"),
        "invalid_value": ("channel", "fax"),
        "orphan_reference": ("erp_account_id", "A9999999"),
        "duplicate_key": ("status", "cancelled"),
    },
    "erp/order_lines": {
        "parse_error": ("category", PARSE_MARKER),
        "type_error": ("quantity", "two"),
        "missing_required": ("product_id", ""),
        "negative_quantity": ("quantity", "-2"),
        "orphan_reference": ("order_id", "O999999999"),
        "duplicate_key": ("quantity", "7"),
    },
    "erp/payments": {
        "parse_error": ("method", PARSE_MARKER),
        "type_error": ("amount", "12,50 EUR"),
        "missing_required": ("method", ""),
        "negative_amount": ("amount", "-19.99"),
        "unknown_currency": ("currency", "XYZ"),
        "future_date": ("paid_at", "2099-02-02T02:02:02"),
        "invalid_value": ("method", "barter"),
        "orphan_reference": ("order_id", "O999999998"),
        "duplicate_key": ("method", "gift_card"),
    },
    "support/tickets": {
        "parse_error": ("category", PARSE_MARKER),
        "type_error": ("created_at", "tomorrow"),
        "missing_required": ("channel", ""),
        "future_date": ("created_at", "2099-05-05T05:05:05"),
        "invalid_value": ("csat_score", "9"),
        "duplicate_key": ("category", "billing"),
    },
    "events/events": {
        "parse_error": ("device", PARSE_MARKER),
        "type_error": ("occurred_at", "not a time"),
        "missing_required": ("anonymous_id", None),
        "future_date": ("occurred_at", "2099-07-07T07:07:07"),
        "invalid_value": ("event_type", "teleport"),
        "duplicate_key": ("event_type", "login"),
    },
}


def _break_marked_lines(path: Path) -> None:
    """Turn the marker into a line that cannot parse: two surplus CSV fields (DuckDB silently drops
    ONE surplus trailing empty field, so one is not enough) or a bare word in JSON."""
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        data = data.replace(f'"{PARSE_MARKER}"'.encode(), b"broken")
    else:
        data = data.replace(PARSE_MARKER.encode(), b"broken,extra,fields")
    path.write_bytes(data)


def _sql_literal(value) -> str:
    return "null" if value is None else "'" + str(value).replace("'", "''") + "'"


def _column_sql(table: str, name: str, arrow_type: pa.DataType, alias: str = "") -> str:
    """SQL that renders one column as landing text (ids get their prefix, timestamps ISO 8601)."""
    ref = f"{alias}.{name}" if alias else name
    if name in ID_FORMATS.get(table, {}):
        prefix, width = ID_FORMATS[table][name]
        return f"'{prefix}' || " + (f"lpad({ref}::varchar, {width}, '0')" if width else f"{ref}::varchar")
    if pa.types.is_timestamp(arrow_type):
        return f"strftime({ref}, '%Y-%m-%dT%H:%M:%S')"
    if pa.types.is_floating(arrow_type):
        return f"printf('%.{6 if name == 'rate_to_base' else 2}f', {ref})"
    return f"{ref}::varchar"


def _write_table(con, rng, table: str, data, rate: float, path: Path) -> tuple[int, pd.DataFrame]:
    """Render `data` as text, insert ~rate * n bad rows (copies of random good rows with one defect,
    new keys; duplicates reuse a key and come after their original) and write the file with DuckDB.
    Returns (rows written, truth of the bad rows)."""
    arrow = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    cols = arrow.column_names
    con.register("_src", arrow.append_column("_i", pa.array(np.arange(arrow.num_rows, dtype=np.int64))))
    rendered = {c: _column_sql(table, c, arrow.schema.field(c).type) for c in cols}
    from_source = {c: _column_sql(table, c, arrow.schema.field(c).type, alias="s") for c in cols}
    n = arrow.num_rows
    kinds = list(CORRUPTIONS.get(table, {}))
    n_bad = int(round(n * rate)) if kinds else 0
    key = cols[0]
    src = rng.integers(0, max(n, 1), n_bad)
    kind = np.array(kinds or ["none"], dtype=object)[rng.integers(0, max(len(kinds), 1), n_bad)]
    dup = kind == "duplicate_key"
    pos = rng.random(n_bad) * n
    pos[dup] = src[dup] + 0.5 + rng.random(dup.sum()) * (n - src[dup] - 0.5)
    tag = table.split("/")[1][:3].upper()
    bad = pd.DataFrame({"src": src, "kind": kind, "pos": pos, "new_key": [f"X{tag}{i:08d}" for i in range(n_bad)]})
    con.register("_bad", bad)
    bad_cols = []
    for c in cols:
        value = from_source[c]
        if c == key:
            expr = f"case when b.kind = 'duplicate_key' then {value} else b.new_key::varchar end"
        else:
            whens = " ".join(
                f"when '{k}' then {_sql_literal(v)}" for k, (col, v) in CORRUPTIONS.get(table, {}).items() if col == c
            )
            expr = f"case b.kind {whens} else {value} end" if whens else value
        bad_cols.append(f"{expr} as {c}")
    path.parent.mkdir(parents=True, exist_ok=True)
    options = "(format json)" if path.suffix == ".jsonl" else "(header true)"
    good = ", ".join(f"{rendered[c]} as {c}" for c in cols)
    names = ", ".join(cols)
    # One pass: render every column as text while copying; bad rows are spliced in by position.
    con.execute(
        f"""copy (select {names} from (
                select {good}, _i::double as _pos from _src
                union all
                select {", ".join(bad_cols)}, b.pos from _src s join _bad b on s._i = b.src
            ) order by _pos) to '{path}' {options}"""
    )
    dup_keys = dict(
        con.execute(
            f"select s._i, {from_source[key]} from _src s join _bad b on s._i = b.src where b.kind = 'duplicate_key'"
        ).fetchall()
    )
    con.unregister("_bad")
    con.unregister("_src")
    if "parse_error" in kind:
        _break_marked_lines(path)
    # record number of each bad row = good rows before it + bad rows before it + 1
    rank_among_bad = np.empty(n_bad, dtype=np.int64)
    rank_among_bad[np.argsort(pos, kind="stable")] = np.arange(n_bad)
    record_number = np.ceil(pos).astype(np.int64) + rank_among_bad + 1
    keys = bad["new_key"].to_numpy(dtype=object)
    keys[dup] = [dup_keys[i] for i in src[dup]]
    truth = (
        pd.DataFrame(
            {
                "source_table": table.replace("/", "."),
                "file": f"{table}/{path.name}",
                "record_number": record_number,
                "record_key": keys,
                "kind": kind,
            }
        )
        .sort_values("record_number")
        .reset_index(drop=True)
    )
    return n + n_bad, truth


# ---------------------------------------------------------------------------------------------


def generate(
    out_dir: Path,
    customers: int,
    seed: int = 42,
    *,
    orders_per_customer: float = 6.0,
    lines_per_order: float = 2.0,
    tickets_per_customer: float = 0.5,
    duplicate_rate: float = 0.10,
    bad_row_rate: float = 0.01,
    events_per_customer: float = 5.0,
    placeholder_rate: float = 0.004,
    no_contact_share: float = 0.0,
    as_of: date | None = None,
) -> GenerationSummary:
    """Write landing files and ground truth for `customers` persons into `out_dir`.

    `no_contact_share`: the share of persons whose records carry neither e-mail nor phone anywhere
    (CRM, ERP, support, events), as in an acquired company's customer list or a store's sign-ups:
    identity must resolve them from names, birth dates, addresses and cross-references."""
    t0 = time.monotonic()
    out_dir = Path(out_dir)
    for sub in ("landing", "truth"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    as_of64 = np.datetime64(as_of or date(2026, 10, 31), "s") + np.timedelta64(20 * 3600, "s")
    rng = np.random.default_rng(seed)

    persons = _persons(rng, customers, as_of64)
    count, start, end = _activity(rng, persons, orders_per_customer, as_of64)
    first_seen = as_of64 - ((start + rng.uniform(0, 60, customers)) * 86400).astype("timedelta64[s]")
    first_seen = np.maximum(first_seen, DATA_START - np.timedelta64(400, "D"))
    crm, crm_person = _crm_customers(rng, persons, duplicate_rate, first_seen, as_of64)
    buyers = count > 0
    accounts, acct_person = _erp_accounts(rng, persons, crm, crm_person, buyers, first_seen, as_of64)
    _plant_placeholders(np.random.default_rng(seed + 1), crm, accounts, placeholder_rate)
    orders, lines, payments = _orders(
        rng, persons, acct_person, count, start, end, lines_per_order, as_of64, N.FX_LEVELS
    )
    tickets, ticket_person = _tickets(rng, persons, accounts, acct_person, start, end, tickets_per_customer, as_of64)
    consents = _consents(rng, crm, as_of64)
    events, event_person, event_identified = _events(
        rng, persons, crm, crm_person, start, end, events_per_customer, as_of64
    )
    fx = _fx_rates(rng, as_of64)
    # its own random stream, written last: every other table stays as it was before reviews existed
    reviews_rng = np.random.default_rng(seed + 3)
    reviews = _reviews(reviews_rng, orders, as_of64)
    if no_contact_share:
        # its own random stream: the data of every other person stays as without the option
        silent = np.random.default_rng(seed + 2).random(customers) < no_contact_share
        events, event_identified = _drop_contacts(
            silent,
            crm,
            crm_person,
            accounts,
            acct_person,
            tickets,
            ticket_person,
            events,
            event_person,
            event_identified,
        )

    landing = out_dir / "landing"
    summary = GenerationSummary(out_dir=out_dir, customers=customers, seed=seed)
    tables = {
        "crm/customers": crm,
        "crm/consents": consents,
        "erp/accounts": accounts,
        "erp/orders": orders,
        "erp/order_lines": lines,
        "erp/payments": payments,
        "support/tickets": tickets,
        "events/events": events,
        "erp/fx_rates": fx,
        "feedback/reviews": reviews,
    }
    truths = []
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("set enable_progress_bar = false")
    for name, data in tables.items():
        suffix = "jsonl" if name == "events/events" else "csv"
        rate = 0.0 if name in ("erp/fx_rates", "feedback/reviews") else bad_row_rate
        table_rng = reviews_rng if name == "feedback/reviews" else rng
        rows, truth = _write_table(con, table_rng, name, data, rate, landing / name / f"part-0000.{suffix}")
        truths.append(truth)
        summary.rows[name.replace("/", ".")] = rows
    con.close()

    truth_dir = out_dir / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    # the planted buying window: orders fall between active_from and active_until (the churn truth: a person whose
    # window closed before a date never buys again after it)
    window = {
        "active_from": (as_of64 - (start * 86400).astype("timedelta64[s]")).astype("datetime64[D]"),
        "active_until": (as_of64 - (end * 86400).astype("timedelta64[s]")).astype("datetime64[D]"),
    }
    persons[
        ["person_id", "true_segment", "first_name", "last_name", "email", "phone_e164", "country", "household_id"]
    ].rename(columns={"phone_e164": "phone"}).assign(**window).to_parquet(truth_dir / "persons.parquet", index=False)
    event_ids = np.char.add("E", np.char.zfill((np.flatnonzero(event_identified) + 1).astype(str), 10))
    pd.concat(
        [
            pd.DataFrame(
                {"source_table": "crm.customers", "source_record_id": crm["crm_customer_id"], "person_id": crm_person}
            ),
            pd.DataFrame(
                {
                    "source_table": "erp.accounts",
                    "source_record_id": accounts["erp_account_id"],
                    "person_id": acct_person,
                }
            ),
            pd.DataFrame(
                {
                    "source_table": "support.tickets",
                    "source_record_id": tickets["ticket_id"],
                    "person_id": ticket_person,
                }
            ),
            pd.DataFrame(
                {
                    "source_table": "events.events",
                    "source_record_id": event_ids,
                    "person_id": event_person[event_identified],
                }
            ),
        ],
        ignore_index=True,
    ).to_parquet(truth_dir / "source_records.parquet", index=False)
    bad = pd.concat(truths, ignore_index=True)
    bad.to_parquet(truth_dir / "bad_rows.parquet", index=False)
    summary.bad_rows = bad["kind"].value_counts().sort_index().to_dict()
    summary.elapsed_seconds = time.monotonic() - t0
    manifest = {
        "seed": seed,
        "customers": customers,
        "orders_per_customer": orders_per_customer,
        "lines_per_order": lines_per_order,
        "tickets_per_customer": tickets_per_customer,
        "duplicate_rate": duplicate_rate,
        "bad_row_rate": bad_row_rate,
        "placeholder_rate": placeholder_rate,
        "events_per_customer": events_per_customer,
        "no_contact_share": no_contact_share,
        "as_of": str(as_of or date(2026, 10, 31)),
        "rows": summary.rows,
        "bad_rows": {k: int(v) for k, v in summary.bad_rows.items()},
    }
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return summary


__all__ = ["generate", "GenerationSummary", "SEGMENTS", "BAD_KINDS"]
