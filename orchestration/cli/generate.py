"""`segments generate`: demo landing files and their ground truth, or the next period of a demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    g = sub.add_parser("generate", help="write demo landing files and ground truth")
    g.add_argument("--customers", type=int, default=20_000)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--out", required=True)
    g.add_argument(
        "--next-period",
        action="store_true",
        help="add the next period's orders to the demo in --out (a second delivery)",
    )
    g.add_argument("--days", type=int, default=21, help="length of the next period (with --next-period)")
    g.add_argument("--orders-per-customer", type=float, default=6.0, help="mean orders per person (default 6)")
    g.add_argument("--lines-per-order", type=float, default=2.0, help="mean lines per order (default 2)")
    g.add_argument(
        "--tickets-per-customer", type=float, default=0.5, help="mean support tickets per person (default 0.5)"
    )
    g.add_argument("--duplicate-rate", type=float, default=0.10, help="share of persons with a duplicate CRM record")
    g.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    if args.next_period:
        from demo.increment import generate_increment

        try:
            inc = generate_increment(Path(args.out), days=args.days, seed=args.seed)
        except (ValueError, FileNotFoundError) as err:
            print(f"segments generate --next-period: {err}", file=sys.stderr)
            return 2
        print(
            f"Next period {inc.period_start} .. {inc.period_end}: {inc.orders:,} orders, "
            f"{inc.order_lines:,} lines from "
            f"{inc.buyers:,} buyers ({inc.slipped:,} champions and loyal regulars stopped buying)\n"
            + "\n".join(f"  {f}" for f in inc.files)
        )
        return 0
    from demo.generator import generate

    summary = generate(
        Path(args.out),
        customers=args.customers,
        seed=args.seed,
        orders_per_customer=args.orders_per_customer,
        lines_per_order=args.lines_per_order,
        tickets_per_customer=args.tickets_per_customer,
        duplicate_rate=args.duplicate_rate,
    )
    print(summary.describe())
    return 0
