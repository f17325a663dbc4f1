"""Reviewer decisions about pairs of records: link them, or never link them, whatever the model says.

The decisions live in a CSV file the user keeps with their project (and under version control), by
default `$SEGMENTS_HOME/identity/overrides.csv` (`SEGMENTS_IDENTITY_DIR` moves it):

    record_id_l,record_id_r,decision,decided_by,reason,decided_at
    crm:C000123,erp:A000456,link,anna.k,same person: married name,2026-11-30T10:00:00
    crm:C000777,crm:C000778,never_link,ben.o,twins sharing an address,

`decision` is `link` or `never_link`; `decided_by` and `reason` are required (an audit needs both);
`decided_at` is optional. A later line about the same pair replaces an earlier one. Every identity
run reads the file before clustering: a `link` joins the two records with the strongest link there is
(`override_link`), a `never_link` removes any link between them and makes them a contradiction the
guardrails must separate. The file's SHA-256 and what it changed are recorded with the run; merges
and splits it causes carry its author and reason in `identity.identity_ledger`. `segments identity
decide` appends a decision for a review item.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

OVERRIDES_TABLE = "identity_overrides"
OVERRIDE_NOTES_TABLE = "identity_override_notes"
COLUMNS = ("record_id_l", "record_id_r", "decision", "decided_by", "reason", "decided_at")
REQUIRED = COLUMNS[:5]
DECISIONS = ("link", "never_link")


class OverridesError(ValueError):
    """The overrides file cannot be applied (what is wrong and on which line)."""


@dataclass(frozen=True)
class OverridesApplied:
    """What a run did with the overrides file."""

    path: str | None
    sha256: str | None
    decisions: int  # after later lines replaced earlier ones
    links: int
    never_links: int
    unknown_records: int  # decisions naming a record this data does not hold (kept, not applied)

    def describe(self) -> dict:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "decisions": self.decisions,
            "links": self.links,
            "never_links": self.never_links,
            "unknown_records": self.unknown_records,
        }


NO_OVERRIDES = OverridesApplied(None, None, 0, 0, 0, 0)


def _empty(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""create or replace temp table {OVERRIDES_TABLE} (
                record_id_l varchar, record_id_r varchar, decision varchar, decided_by varchar, reason varchar,
                decided_at varchar, line integer, node_l bigint, node_r bigint)"""
    )
    con.execute(f"create or replace temp table {OVERRIDE_NOTES_TABLE} (record_id varchar, note varchar)")


def read_overrides(path: Path) -> list[dict[str, str]]:
    """The decisions of the file, validated, in file order (with their line numbers). Raises
    OverridesError naming the file, the line and the problem."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = [c.strip().lower() for c in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise OverridesError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})")
            rows = []
            for number, raw in enumerate(reader, start=2):
                row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
                if not any(row.values()):
                    continue
                empty = [c for c in REQUIRED if not row.get(c)]
                if empty:
                    raise OverridesError(f"{path}, line {number}: {', '.join(empty)} must not be empty")
                decision = row["decision"].lower().replace("-", "_")
                if decision not in DECISIONS:
                    raise OverridesError(
                        f"{path}, line {number}: decision {row['decision']!r} is not one of {', '.join(DECISIONS)}"
                    )
                if row["record_id_l"] == row["record_id_r"]:
                    raise OverridesError(f"{path}, line {number}: a record cannot be paired with itself")
                rows.append({**{c: row.get(c, "") for c in COLUMNS}, "decision": decision, "line": number})
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise OverridesError(f"{path}: cannot be read ({err})") from err


def load_overrides(con: duckdb.DuckDBPyConnection, path: Path | None) -> OverridesApplied:
    """Temp table `identity_overrides` (the latest decision per pair of records this data holds, with
    their nodes) and `identity_override_notes` (record id -> what decided it, for the ledger), from
    `path` (none or absent: empty tables). Needs `identity_records`."""
    _empty(con)
    if path is None or not path.exists():
        return NO_OVERRIDES
    rows = read_overrides(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if not rows:
        return OverridesApplied(str(path), sha, 0, 0, 0, 0)
    import pyarrow as pa

    con.register("_override_rows", pa.Table.from_pylist(rows))
    try:
        con.execute(
            f"""insert into {OVERRIDES_TABLE}
                with latest as (
                    select * from _override_rows
                    qualify row_number() over (
                        partition by least(record_id_l, record_id_r), greatest(record_id_l, record_id_r)
                        order by line desc) = 1
                )
                select o.record_id_l, o.record_id_r, o.decision, o.decided_by, o.reason, o.decided_at, o.line,
                    l.node, r.node
                from latest as o
                left join identity_records as l on l.record_id = o.record_id_l
                left join identity_records as r on r.record_id = o.record_id_r"""
        )
    finally:
        con.unregister("_override_rows")
    con.execute(
        f"""insert into {OVERRIDE_NOTES_TABLE}
            select unnest([record_id_l, record_id_r]),
                'override ' || decision || ' by ' || decided_by || ': ' || reason
            from {OVERRIDES_TABLE} where node_l is not null and node_r is not null"""
    )
    decisions, links, never, unknown = con.execute(
        f"""select count(*),
                count(*) filter (decision = 'link' and node_l is not null and node_r is not null),
                count(*) filter (decision = 'never_link' and node_l is not null and node_r is not null),
                count(*) filter (node_l is null or node_r is null)
            from {OVERRIDES_TABLE}"""
    ).fetchall()[0]
    return OverridesApplied(str(path), sha, int(decisions), int(links), int(never), int(unknown))


def append_decision(
    path: Path, record_id_l: str, record_id_r: str, decision: str, decided_by: str, reason: str
) -> None:
    """Append one decision to the overrides file (created with its header when missing)."""
    decision = decision.lower().replace("-", "_")
    if decision not in DECISIONS:
        raise OverridesError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    if not decided_by.strip() or not reason.strip():
        raise OverridesError("a decision needs who decided it and why")
    if path.exists():
        read_overrides(path)  # never append to a file that is already broken
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(COLUMNS)
        writer.writerow(
            [
                record_id_l,
                record_id_r,
                decision,
                decided_by.strip(),
                reason.strip(),
                datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            ]
        )
