"""The next period of the demo: new orders for the same persons, as a second landing delivery.

`generate_increment(out_dir, days)` reads a generated demo (`out_dir/truth`) and writes
`landing/erp/orders/part-NNNN.csv` and `landing/erp/order_lines/part-NNNN.csv` for the `days` after
the data's last day, so a second `segments run` sees changed data: segment history, transitions and
the playbook outbox move. Who buys follows the planted segment (champions often, dormant customers
almost never), with drift: a share of champions and loyal regulars stop buying - they are the
customers the "slipping" playbooks and alerts exist for. Deterministic by seed; vectorised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

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


def generate_increment(out_dir: Path, days: int = 21, seed: int = 1) -> IncrementSummary:
    """Write the next `days` of orders; refuses a period that ends in the future (the landing contract
    quarantines future dates) or a period already written."""
    out_dir = Path(out_dir)
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
    buys = (rng.random(len(buyers)) < p) & ~slipped
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
    periods.append(
        {
            "number": number,
            "period_start": str(start),
            "period_end": str(end),
            "orders": k,
            "order_lines": len(lines),
            "seed": seed,
        }
    )
    manifest["increments"] = periods
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return IncrementSummary(start, end, k, len(lines), int(buys.sum()), int(slipped.sum()), files)
