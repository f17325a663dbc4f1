"""`segments identity review|decide`: the identity review queue and reviewers' decisions.

`review` lists the items waiting for a decision (borderline pairs, cut bridges, refused references,
shared keys) from `identity.review_queue`; `decide` records a decision on a pair of records in the
overrides file (`$SEGMENTS_IDENTITY_DIR/overrides.csv`, default `$SEGMENTS_HOME/identity/`), which the
next run applies before clustering (ml/identity/overrides.py).
"""

from __future__ import annotations

import argparse
import sys

from orchestration.settings import get_settings


def add_parser(sub) -> None:
    i = sub.add_parser("identity", help="identity review queue and reviewers' decisions")
    ident = i.add_subparsers(dest="identity", required=True)
    r = ident.add_parser("review", help="list review items waiting for a decision")
    r.add_argument("--all", action="store_true", help="also items already decided")
    r.add_argument("--kind", help="only this kind (borderline_pair, bridge, reference_conflict, ...)")
    r.add_argument("--limit", type=int, default=50)
    r.set_defaults(func=cmd_review)
    d = ident.add_parser("decide", help="record a decision on a pair of records (applied by the next run)")
    d.add_argument("item", nargs="+", help="a review key (of a two-record item) or two record ids, e.g. crm:C1 erp:A7")
    d.add_argument("--link", dest="decision", action="store_const", const="link", help="they are one person")
    d.add_argument("--never-link", dest="decision", action="store_const", const="never_link", help="never one person")
    d.add_argument("--by", required=True, help="who decided")
    d.add_argument("--reason", required=True, help="why")
    d.set_defaults(func=cmd_decide)


def cmd_review(args: argparse.Namespace) -> int:
    from warehouse.connections import connect

    settings = get_settings()
    if not settings.warehouse_path.exists():
        print(f"no warehouse at {settings.warehouse_path}: run `segments run` first", file=sys.stderr)
        return 2
    where = [] if args.all else ["decision is null"]
    params: list = []
    if args.kind:
        where.append("kind = ?")
        params.append(args.kind)
    with connect(settings.warehouse_path, read_only=True) as con:
        rows = con.execute(
            f"""select review_key, kind, record_ids, detail, decision, decided_by, last_seen_at
                from identity.review_queue {"where " + " and ".join(where) if where else ""}
                order by decision is not null, kind, last_seen_at desc, review_key limit ?""",
            [*params, max(args.limit, 1)],
        ).fetchall()
        (waiting,) = con.execute("select count(*) from identity.review_queue where decision is null").fetchall()[0]
    for key, kind, records, detail, decision, by, seen in rows:
        state = f"decided: {decision} by {by}" if decision else "waiting"
        print(f"{key}  {kind:<18} {state:<24} {', '.join(records[:6])}{' ...' if len(records) > 6 else ''}")
        print(f"    {detail} (last seen {seen:%Y-%m-%d %H:%M})")
    print(
        f"{waiting:,} item(s) waiting. Decide a pair: segments identity decide <key or two record ids> "
        f"--link|--never-link --by NAME --reason TEXT  ({settings.identity_files_dir / 'overrides.csv'})"
    )
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from ml.identity.overrides import OverridesError, append_decision
    from ml.identity.resolve import OVERRIDES_FILE
    from warehouse.connections import connect

    settings = get_settings()
    if args.decision is None:
        print("say --link or --never-link", file=sys.stderr)
        return 2
    if len(args.item) == 2:
        left, right = args.item
    elif len(args.item) == 1:
        if not settings.warehouse_path.exists():
            print(f"no warehouse at {settings.warehouse_path}", file=sys.stderr)
            return 2
        with connect(settings.warehouse_path, read_only=True) as con:
            found = con.execute(
                "select record_ids from identity.review_queue where review_key = ?", [args.item[0]]
            ).fetchall()
        if not found:
            print(f"no review item {args.item[0]!r}", file=sys.stderr)
            return 2
        if len(found[0][0]) != 2:
            print(
                f"review item {args.item[0]} holds {len(found[0][0])} records: decide on two of them by record id",
                file=sys.stderr,
            )
            return 2
        left, right = found[0][0]
    else:
        print("give one review key or two record ids", file=sys.stderr)
        return 2
    path = settings.identity_files_dir / OVERRIDES_FILE
    try:
        append_decision(path, left, right, args.decision, args.by, args.reason)
    except OverridesError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.decision} {left} {right} recorded in {path}; the next `segments run` applies it")
    return 0
