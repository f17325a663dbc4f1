"""Playbooks as code: segments and transitions -> actions (an outbox) and alerts for account owners.

`ml/segmentation/definitions/playbooks.yaml` (versioned like the segment definitions) lists actions - a segment or a
transition rule, channel, consent purpose, template key, owner, SLA - and alerts - an edge between
segments for customers above a revenue threshold, with owner and due date. After every scoring run
`evaluate_playbooks` turns them into rows, in SQL over the SCD2 membership history:

- `ml.segment_actions`, an append-only **outbox** for reverse-ETL consumers: only actions not emitted
  before. The idempotency key `action_id` is md5(action, customer, segment, start of the membership
  period), so a customer who stays At Risk gets the win-back once, and again only after leaving and
  re-entering. No action is created for a purpose the customer has no lawful basis for (counted, not
  written): a granted consent, or the contract or legitimate interest the project configures, never
  after an objection; the row records the basis it rests on. A deterministic hash-based holdout
  (`holdout_share`) keeps a control group: its rows are written with `is_holdout` and must not be
  sent, so lift can be measured.
- `ml.segment_alerts`: one alert per customer and edge crossing, with owner and due date.

Names in the YAML are validated identifiers and every value reaches SQL as a bound parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from ml.segmentation.definition import DEFINITIONS_DIR, VERSION_LOCK
from ml.segmentation.store import HISTORY_TABLE
from ml.versioning import VersionLockError, check_version_lock, content_digest, read_lock
from warehouse.connections import transaction
from warehouse.tables import ensure_tables

PLAYBOOKS = DEFINITIONS_DIR / "playbooks.yaml"
ACTIONS_TABLE = "ml.segment_actions"
ALERTS_TABLE = "ml.segment_alerts"
_CANDIDATES = "playbook_candidates"  # temp table: one action rule's candidates while it is evaluated
# purpose -> the golden record's lawful basis for it (marts.customers): consent, contract,
# legitimate_interest, objected or none; an action is created only under the first three
BASIS_COLUMNS = {"marketing_email": "marketing_email_basis", "marketing_sms": "marketing_sms_basis"}
LAWFUL = ("consent", "contract", "legitimate_interest")
CHANNELS = ("email", "sms", "phone", "push")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class PlaybookError(ValueError):
    """A playbook file that cannot be used, with the reason."""


@dataclass(frozen=True)
class ActionRule:
    name: str
    family: str
    segments: tuple[str, ...]  # segment rule: current segment in these
    from_segments: tuple[str, ...]  # transition rule: moved from one of these ...
    to_segments: tuple[str, ...]  # ... to one of these in this run
    channel: str
    purpose: str
    template_key: str
    owner: str
    sla_hours: int

    @property
    def trigger(self) -> str:
        return "transition" if self.to_segments else "segment"


@dataclass(frozen=True)
class AlertRule:
    name: str
    family: str
    from_segments: tuple[str, ...]
    to_segments: tuple[str, ...]
    min_revenue_base: float
    owner: str
    due_in_days: int


@dataclass(frozen=True)
class Playbooks:
    name: str  # the key of its versions in ml/segmentation/definitions/versions.lock
    version: str
    holdout_share: float
    actions: tuple[ActionRule, ...]
    alerts: tuple[AlertRule, ...]
    content_sha256: str


def _names(values: Any, what: str) -> tuple[str, ...]:
    values = tuple(values or ())
    bad = [v for v in values if not isinstance(v, str) or not NAME.match(v)]
    if bad:
        raise PlaybookError(f"{what}: not valid names {bad}")
    return values


def parse_playbooks(raw: dict[str, Any]) -> Playbooks:
    try:
        share = float(raw["holdout_share"])
        if not 0 <= share < 1:
            raise PlaybookError(f"holdout_share must be in [0, 1), got {share}")
        actions = []
        for a in raw.get("actions") or []:
            when = a["when"]
            transition = when.get("transition") or {}
            rule = ActionRule(
                name=_names([a["name"]], "action name")[0],
                family=_names([when["family"]], "family")[0],
                segments=_names(when.get("segment"), f"{a['name']}.segment"),
                from_segments=_names(transition.get("from"), f"{a['name']}.transition.from"),
                to_segments=_names(transition.get("to"), f"{a['name']}.transition.to"),
                channel=str(a["channel"]),
                purpose=str(a["purpose"]),
                template_key=str(a["template_key"]),
                owner=str(a["owner"]),
                sla_hours=int(a["sla_hours"]),
            )
            if bool(rule.segments) == bool(rule.to_segments):
                raise PlaybookError(f"action {rule.name}: give either a segment or a transition rule")
            if rule.to_segments and not rule.from_segments:
                raise PlaybookError(f"action {rule.name}: a transition needs from and to")
            if rule.purpose not in BASIS_COLUMNS:
                raise PlaybookError(f"action {rule.name}: purpose {rule.purpose!r} not in {sorted(BASIS_COLUMNS)}")
            if rule.channel not in CHANNELS:
                raise PlaybookError(f"action {rule.name}: channel {rule.channel!r} not in {CHANNELS}")
            actions.append(rule)
        alerts = [
            AlertRule(
                name=_names([a["name"]], "alert name")[0],
                family=_names([a["family"]], "family")[0],
                from_segments=_names(a["from"], f"{a['name']}.from"),
                to_segments=_names(a["to"], f"{a['name']}.to"),
                min_revenue_base=float(a.get("min_revenue_base", 0)),
                owner=str(a["owner"]),
                due_in_days=int(a["due_in_days"]),
            )
            for a in raw.get("alerts") or []
        ]
        names = [r.name for r in actions] + [r.name for r in alerts]
        if len(set(names)) != len(names):
            raise PlaybookError(f"duplicate playbook names in {names}")
        return Playbooks(
            str(raw["name"]), str(raw["version"]), share, tuple(actions), tuple(alerts), content_digest(raw)
        )
    except KeyError as err:
        raise PlaybookError(f"missing field {err}") from None


def load_playbooks(path: Path = PLAYBOOKS, lock_path: Path | None = None) -> Playbooks:
    """Read, validate and version-check (ml/segmentation/definitions/versions.lock) a playbook file."""
    books = parse_playbooks(yaml.safe_load(Path(path).read_text()))
    try:
        check_version_lock(books, read_lock(lock_path or VERSION_LOCK))  # reads name, version, content_sha256
    except VersionLockError as err:
        raise PlaybookError(str(err)) from None
    return books


# Who a rule selects, with the membership period that triggers it (valid_from) and the segment left.
_SEGMENT_MATCH = f"""
    select h.customer_id, h.segment_family, h.segment_key, h.valid_from, null::varchar as from_segment_key
    from {HISTORY_TABLE} as h
    where h.is_current and h.segment_family = $family and list_contains($segments, h.segment_key)"""
_TRANSITION_MATCH = f"""
    select e.customer_id, e.segment_family, e.segment_key, e.valid_from, l.segment_key as from_segment_key
    from {HISTORY_TABLE} as e
    inner join {HISTORY_TABLE} as l
        on l.customer_id = e.customer_id and l.segment_family = e.segment_family and l.closed_run_id = e.opened_run_id
    where e.opened_run_id = $run_id and e.segment_family = $family
      and list_contains($from_segments, l.segment_key) and list_contains($to_segments, e.segment_key)"""


def evaluate_playbooks(con: duckdb.DuckDBPyConnection, run_id: str, books: Playbooks) -> dict[str, dict[str, int]]:
    """`emit_playbooks` in a transaction of its own."""
    with transaction(con):
        return emit_playbooks(con, run_id, books)


def emit_playbooks(con: duckdb.DuckDBPyConnection, run_id: str, books: Playbooks) -> dict[str, dict[str, int]]:
    """Append this run's new actions and alerts, in the caller's transaction (the scoring run's); per
    rule: matched customers, new rows written, suppressed for missing consent, in holdout. Re-running the
    run adds nothing, and neither does a new run in which no customer entered a new membership period
    (the keys of actions and alerts are the periods, which such a run does not open)."""
    ensure_tables(con, ACTIONS_TABLE, ALERTS_TABLE)
    stats: dict[str, dict[str, int]] = {}
    for rule in books.actions:
        match = _TRANSITION_MATCH if rule.trigger == "transition" else _SEGMENT_MATCH
        params: dict[str, Any] = {"family": rule.family}
        if rule.trigger == "transition":
            params.update(run_id=run_id, from_segments=list(rule.from_segments), to_segments=list(rule.to_segments))
        else:
            params["segments"] = list(rule.segments)
        basis = BASIS_COLUMNS[rule.purpose]  # a fixed column name from the mapping above
        # the candidate query (history, consent, outbox lookup) runs once: into a temp table that
        # gives both the counts and the rows to insert
        con.execute(
            f"""create or replace temp table {_CANDIDATES} as
            with matched as ({match}),
            keyed as (
                select m.*,
                       md5($action || '|' || m.customer_id || '|' || m.segment_key || '|' || m.valid_from::varchar)
                           as action_id,
                       c.{basis} as lawful_basis,
                       coalesce(list_contains({list(LAWFUL)}, c.{basis}), false) as has_consent
                from matched as m left join marts.customers as c using (customer_id)
            )
            select keyed.*,
                   not exists (select 1 from {ACTIONS_TABLE} a where a.action_id = keyed.action_id) as is_new
            from keyed""",
            {**params, "action": rule.name},
        )
        counts = con.execute(
            f"""select count(*), count(*) filter (where not has_consent),
                       count(*) filter (where has_consent and is_new)
                from {_CANDIDATES}"""
        ).fetchall()[0]
        con.execute(
            f"""insert into {ACTIONS_TABLE}
            select action_id, $action, $version, customer_id, segment_family, segment_key, $trigger,
                   from_segment_key, $channel, $purpose, $template_key, $owner,
                   md5_number($action || '|' || customer_id) % 10000 < $holdout * 10000,
                   current_timestamp::timestamp + to_hours($sla_hours), current_timestamp::timestamp, $run_id,
                   lawful_basis
            from {_CANDIDATES}
            where has_consent and is_new""",
            {
                "action": rule.name,
                "version": books.version,
                "trigger": rule.trigger,
                "channel": rule.channel,
                "purpose": rule.purpose,
                "template_key": rule.template_key,
                "owner": rule.owner,
                "holdout": books.holdout_share,
                "sla_hours": rule.sla_hours,
                "run_id": run_id,
            },
        )
        holdout = con.execute(
            f"select count(*) filter (where is_holdout) from {ACTIONS_TABLE} "
            "where created_run_id = ? and action_name = ?",
            [run_id, rule.name],
        ).fetchall()[0][0]
        stats[rule.name] = {"matched": counts[0], "no_consent": counts[1], "new": counts[2], "holdout": holdout}
    for alert in books.alerts:
        params = {
            "run_id": run_id,
            "family": alert.family,
            "from_segments": list(alert.from_segments),
            "to_segments": list(alert.to_segments),
        }
        # the rows this statement inserted (a repeat of the run inserts none)
        (new,) = con.execute(
            f"""insert into {ALERTS_TABLE}
            with matched as ({_TRANSITION_MATCH})
            select md5($alert || '|' || m.customer_id || '|' || m.valid_from::varchar), $alert, $version,
                   m.customer_id, m.segment_family, m.from_segment_key, m.segment_key, f.monetary_base, $owner,
                   current_date + $due_in_days, current_timestamp::timestamp, $run_id
            from matched as m
            inner join marts.customer_features as f using (customer_id)
            where f.monetary_base >= $min_revenue
              and not exists (select 1 from {ALERTS_TABLE} a
                              where a.alert_id
                                    = md5($alert || '|' || m.customer_id || '|' || m.valid_from::varchar))""",
            {
                **params,
                "alert": alert.name,
                "version": books.version,
                "owner": alert.owner,
                "due_in_days": alert.due_in_days,
                "min_revenue": alert.min_revenue_base,
            },
        ).fetchall()[0]
        stats[alert.name] = {"new": int(new)}
    con.execute(f"drop table if exists {_CANDIDATES}")
    return stats
