"""The next period of the demo: new orders for the same persons, as a second landing delivery.

`generate_increment(out_dir, days)` reads a generated demo (`out_dir/truth`) and writes
`landing/erp/orders/part-NNNN.csv` and `landing/erp/order_lines/part-NNNN.csv` for the `days` after
the data's last day, so a second `segments run` sees changed data: segment history, transitions and
the playbook outbox move. Who buys follows the planted segment (champions often, dormant customers
almost never), with drift: a share of champions and loyal regulars stop buying - they are the
customers the "slipping" playbooks and alerts exist for. Deterministic by seed; vectorised.

A known treatment effect can be planted, so that the measured lift of the playbooks (segments.playbook_lift)
is tested against a truth: `treatment_effect` is the probability of buying in the period added for the
persons the outbox treated (a row of `segments.segment_actions` not in the holdout, of the `treated_actions`;
all actions when None), read from the warehouse file `warehouse` (opened read-only with duckdb; the demo
imports nothing of the product). A treated person buys with probability min(1, p + effect) instead of p
(a slipped one with the effect alone), decided by the same draw, so for a positive effect whoever buys
untreated buys treated too. The measured lift equals the effect when the playbook lift's window is the
period (`lift_window_days` = `days`, the period starting on the day the actions were decided) and no
probability is capped. With no effect the output is the same, byte for byte, as without the argument.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from demo import names as N

# probability that a person orders in the period, per planted segment
BUY_PROBABILITY = {
    "champions": 0.8,
    "loyal_regulars": 0.55,
    "discount_driven": 0.45,
    "new": 0.5,
    "support_heavy": 0.35,
    "at_risk": 0.1,
    "dormant": 0.03,
}
# share of champions and loyal regulars who stop buying from this period on
SLIP_SHARE = 0.2


@dataclass
class IncrementSummary:
    period_start: date
    period_end: date
    orders: int
    order_lines: int
    buyers: int
    slipped: int
    files: list[Path]
    treated: int = 0  # persons given the planted treatment effect


# The erp accounts of the customers the outbox treated (not in the holdout), from the warehouse file.
TREATED_ACCOUNTS_SQL = """
    select distinct r.source_record_id
    from segments.segment_actions as a
    inner join identity.customer_source_records as r
        on r.customer_id = a.customer_id and r.source_system = 'erp'
    where not a.is_holdout and (? is null or list_contains(?, a.action_name))
"""


def treated_accounts(warehouse: Path, actions: list[str] | None = None) -> set[str]:
    """The erp account ids of the customers with a sent (not holdout) outbox row of `actions` (all: None)."""
    if not Path(warehouse).is_file():
        raise FileNotFoundError(f"no warehouse file at {warehouse}: run the pipeline before planting an effect")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = None if actions is None else list(actions)
        return {r[0] for r in con.execute(TREATED_ACCOUNTS_SQL, [names, names]).fetchall()}


def generate_increment(
    out_dir: Path,
    days: int = 21,
    seed: int = 1,
    *,
    treatment_effect: float = 0.0,
    warehouse: Path | None = None,
    treated_actions: list[str] | None = None,
) -> IncrementSummary:
    """Write the next `days` of orders; refuses a period that ends in the future (the landing contract
    quarantines future dates) or a period already written. `treatment_effect` (-1..1) plants a known
    effect of the playbooks: see the module's docstring."""
    out_dir = Path(out_dir)
    if not -1.0 <= treatment_effect <= 1.0:
        raise ValueError(f"treatment_effect is an added probability in [-1, 1], got {treatment_effect}")
    if treatment_effect and warehouse is None:
        raise ValueError("a treatment effect needs the warehouse file whose outbox says who was treated")
    truth = out_dir / "truth"
    manifest_path = truth / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    periods = manifest.get("increments", [])
    start = date.fromisoformat(periods[-1]["period_end"] if periods else manifest["as_of"])
    end = start + timedelta(days=days)
    if days < 1 or end >= datetime.now(UTC).date():
        raise ValueError(
            f"the next period would end {end}, not before today: the landing contract quarantines future dates"
        )
    number = len(periods) + 1
    rng = np.random.default_rng(seed * 1000 + number)

    persons = pd.read_parquet(truth / "persons.parquet")[["person_id", "true_segment", "country"]]
    records = pd.read_parquet(truth / "source_records.parquet")
    accounts = (
        records[records["source_table"] == "erp.accounts"].sort_values("source_record_id").groupby("person_id").first()
    )
    buyers = persons.merge(accounts, left_on="person_id", right_index=True)
    loyal = buyers["true_segment"].isin(["champions", "loyal_regulars"]).to_numpy()
    slipped = loyal & (rng.random(len(buyers)) < SLIP_SHARE)
    p = buyers["true_segment"].map(BUY_PROBABILITY).fillna(0.2).to_numpy()
    draw = rng.random(len(buyers))
    buys = (draw < p) & ~slipped
    treated = np.zeros(len(buyers), dtype=bool)
    if treatment_effect:
        # the same draw: whoever buys untreated buys treated too (for a positive effect)
        treated = buyers["source_record_id"].isin(treated_accounts(warehouse, treated_actions)).to_numpy()
        base = np.where(slipped, 0.0, p)
        buys = draw < np.clip(base + treatment_effect * treated, 0.0, 1.0)
    active = buyers[buys]
    count = 1 + rng.poisson(0.5, len(active))
    person_idx = np.repeat(np.arange(len(active)), count)
    k = len(person_idx)
    # the day after the last one up to the period's last day, noon at the latest
    seconds = rng.integers(0, (days - 1) * 86400 + 12 * 3600, k)
    ordered = pd.Timestamp(datetime.combine(start, datetime.min.time())) + pd.to_timedelta(seconds + 86400, unit="s")
    currency = active["country"].map({c: v[1] for c, v in N.COUNTRIES.items()}).to_numpy()[person_idx]
    order_ids = np.array([f"O{number:02d}-{i:08d}" for i in range(k)])
    orders = pd.DataFrame(
        {
            "order_id": order_ids,
            "erp_account_id": active["source_record_id"].to_numpy()[person_idx],
            "ordered_at": ordered.strftime("%Y-%m-%dT%H:%M:%S"),
            "channel": rng.choice(["web", "app", "store", "phone"], k, p=[0.45, 0.3, 0.2, 0.05]),
            "currency": currency,
            "status": "completed",
        }
    )
    n_lines = 1 + rng.poisson(1.0, k)
    line_order = np.repeat(np.arange(k), n_lines)
    category = rng.integers(0, len(N.CATEGORIES), len(line_order))
    rate = pd.Series(currency[line_order]).map(N.FX_LEVELS).to_numpy()
    lines = pd.DataFrame(
        {
            "order_line_id": [f"L{number:02d}-{i:09d}" for i in range(len(line_order))],
            "order_id": order_ids[line_order],
            "product_id": [f"P{p:04d}" for p in rng.integers(0, 500, len(line_order))],
            "category": np.array(N.CATEGORIES)[category],
            "quantity": 1 + rng.poisson(0.4, len(line_order)),
            "unit_price": np.round(np.array(N.CATEGORY_PRICE)[category] / rate, 2),
            "discount_amount": "",
        }
    )
    landing = out_dir / "landing" / "erp"
    files = [landing / "orders" / f"part-{number:04d}.csv", landing / "order_lines" / f"part-{number:04d}.csv"]
    orders.to_csv(files[0], index=False)
    lines.to_csv(files[1], index=False)
    period = {
        "number": number,
        "period_start": str(start),
        "period_end": str(end),
        "orders": k,
        "order_lines": len(lines),
        "seed": seed,
    }
    if treatment_effect:  # the planted truth (absent without an effect: the manifest stays as it was)
        period.update(
            treatment_effect=treatment_effect, treated_actions=treated_actions, treated_persons=int(treated.sum())
        )
    periods.append(period)
    manifest["increments"] = periods
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return IncrementSummary(start, end, k, len(lines), int(buys.sum()), int(slipped.sum()), files, int(treated.sum()))
