"""Deterministic identity rules and the name guard every link must pass, as DuckDB SQL.

Rules run first and explain themselves (`rule` on every edge). Each one is guarded: a shared
e-mail or landline links two records only when their given names are compatible, because
households share contact details without being one person. The same guard vetoes Splink's pairs.

All SQL runs on the identity working table `identity_records` (see `linkage.load_records`), where
`node` is a dense integer id per record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from ml.identity.config import IdentityConfig


def given_names_compatible(left: str, right: str, config: IdentityConfig) -> str:
    """SQL: the two records' given names may belong to one person (either missing, the same after
    nickname resolution, a likely typo of each other: similar spelling, or one letter added,
    dropped or swapped, as in "Ute" / "Ue"; an initial of the other, "J" / "John"; or given name and
    surname swapped between the records, "Smith John" / "John Smith")."""
    g = config.given_name_similarity
    return f"""(
        {left}.given_name_key is null or {right}.given_name_key is null
        or {left}.given_name_key = {right}.given_name_key
        or jaro_winkler_similarity({left}.first_name_key, {right}.first_name_key) >= {g}
        or jaro_winkler_similarity({left}.given_name_key, {right}.given_name_key) >= {g}
        or (damerau_levenshtein({left}.first_name_key, {right}.first_name_key) <= 1
            and greatest(length({left}.first_name_key), length({right}.first_name_key)) >= 3)
        or (least(length({left}.first_name_key), length({right}.first_name_key)) = 1
            and left({left}.first_name_key, 1) = left({right}.first_name_key, 1))
        or (jaro_winkler_similarity({left}.first_name_key, {right}.last_name_key) >= {g}
            and jaro_winkler_similarity({left}.last_name_key, {right}.first_name_key) >= {g})
    )"""


def birth_dates_conflict(left: str, right: str) -> str:
    """SQL: both records carry a birth date and the two cannot be one date typed twice (they differ
    by more than one character, and not by day and month swapped). On the ten-character ISO texts an
    edit distance above one is more than two substituted characters, or two that are not one
    transposition; `hamming` decides most pairs fifty times faster than the edit distance."""
    texts = f"strftime({left}.birth_date, '%Y-%m-%d'), strftime({right}.birth_date, '%Y-%m-%d')"
    return f"""coalesce(
        {left}.birth_date <> {right}.birth_date
        and (hamming({texts}) > 2 or (hamming({texts}) = 2 and damerau_levenshtein({texts}) > 1))
        and not (year({left}.birth_date) = year({right}.birth_date)
                 and month({left}.birth_date) = day({right}.birth_date)
                 and day({left}.birth_date) = month({right}.birth_date)),
        false
    )"""


def surnames_compatible(left: str, right: str, config: IdentityConfig) -> str:
    """SQL: the surnames are equal or close (missing surnames do not contradict)."""
    return f"""(
        {left}.last_name_key is null or {right}.last_name_key is null
        or jaro_winkler_similarity({left}.last_name_key, {right}.last_name_key) >= {config.surname_similarity}
    )"""


@dataclass(frozen=True)
class Guards:
    """Which contradictions veto a probabilistic link and mark a bridge in a cluster.

    A guard holds where the data keeps the field reliable: in a CRM whose birth dates are typed with
    errors, two records of one person often disagree on it, and a veto would split them.
    `measure_guards` decides from the data itself; `evidence` says what it measured."""

    given_names: bool = True
    birth_dates: bool = True
    evidence: dict = field(default_factory=dict)


ALL_GUARDS = Guards()


def records_conflict(left: str, right: str, config: IdentityConfig, guards: Guards = ALL_GUARDS) -> str:
    """SQL: the two records describe different people: incompatible given names, or birth dates
    that are not one date typed twice (each only where its guard holds)."""
    parts = []
    if guards.given_names:
        parts.append(f"not {given_names_compatible(left, right, config)}")
    if guards.birth_dates:
        parts.append(birth_dates_conflict(left, right))
    return f"({' or '.join(parts)})" if parts else "false"


# Pairs of records that are one person whatever the field under test says: they agree on the full
# name (for birth dates) or on surname and birth date (for given names) and on a key that identifies
# a person. Tiers in order: a mailbox or a phone number first; a postal code only where no tier-1 key
# gives enough pairs (namesakes share a postal area more often than a mailbox). Streets are no anchor:
# one street holds many households.
_ANCHOR_TIERS = (("email_key", "phone_nsn"), ("postal_code_key", "birth_place_key"))
_GUARDED = {
    # guard: (the field it tests, the fields two records share to be an anchored pair besides a tier key)
    "birth_dates": ("birth_date", ("given_name_key", "last_name_key")),
    "given_names": ("given_name_key", ("last_name_key", "birth_date")),
}


def measure_guards(
    con: duckdb.DuckDBPyConnection, table: str, config: IdentityConfig, max_pairs: int = 200_000
) -> Guards:
    """Decide the guards from the records in `table` (columns of `identity_records`).

    For each guarded field: pairs of distinct records that agree on the anchor fields and a tier key
    (`_ANCHOR_TIERS`), both with the field filled, are one person; the share of them that contradict
    on the field is how often the data gets it wrong. Above `max_guard_miss` the field is not reliable
    here and its guard is off. The first tier with at least `min_guard_pairs` pairs decides; with none,
    the guard stays on (nothing says the field is unreliable)."""
    checks = {
        "birth_dates": birth_dates_conflict("l", "r"),
        "given_names": f"not {given_names_compatible('l', 'r', config)}",
    }
    verdict: dict[str, bool] = {}
    evidence: dict[str, dict] = {}
    for guard, (tested, shared) in _GUARDED.items():
        verdict[guard], evidence[guard] = True, {"anchored_pairs": 0}
        for tier in _ANCHOR_TIERS:
            joins = " union ".join(
                f"""select l.node as a, r.node as b from {table} as l
                    inner join {table} as r on {" and ".join(f"l.{k} = r.{k}" for k in (*shared, key))}
                        and l.node < r.node
                    where l.{tested} is not null and r.{tested} is not null"""
                for key in tier
            )
            pairs, contradicting = con.execute(
                f"""with anchored as (select * from ({joins}) limit {int(max_pairs)})
                    select count(*), count(*) filter ({checks[guard]})
                    from anchored
                    inner join {table} as l on l.node = anchored.a
                    inner join {table} as r on r.node = anchored.b"""
            ).fetchall()[0]
            if pairs >= config.min_guard_pairs:
                share = contradicting / pairs
                verdict[guard] = share <= config.max_guard_miss
                evidence[guard] = {
                    "anchored_on": list(tier),
                    "anchored_pairs": int(pairs),
                    "contradicting": int(contradicting),
                    "share": round(share, 4),
                }
                break
    return Guards(verdict["given_names"], verdict["birth_dates"], evidence)


# Keys shared by more records than `max_cluster_size` are not identities but shared addresses
# (a shop's info@, a reception desk phone): they link nobody and are listed for review.
SHARED_KEYS_SQL = """
create or replace temp table identity_shared_keys as
select 'email' as field, email_key as value, count(*) as records
from identity_records where email_key is not null group by email_key having count(*) > {limit}
union all
select 'phone', phone_nsn, count(*)
from identity_records where phone_nsn is not null group by phone_nsn having count(*) > {limit}
"""


def deterministic_edges_sql(config: IdentityConfig) -> str:
    """SQL creating `identity_rule_edges(node_l, node_r, rule)`; also `identity_reference_conflicts`
    for cross-system references that the name guard refused (they go to the review queue)."""
    g = given_names_compatible("l", "r", config)
    s = surnames_compatible("l", "r", config)
    return f"""
create or replace temp table identity_rule_edges as
with usable as (
    select r.*,
        case when se.value is null then r.email_key end as email_link_key,
        case when sp.value is null then r.phone_nsn end as phone_link_key
    from identity_records as r
    left join identity_shared_keys as se on se.field = 'email' and se.value = r.email_key
    left join identity_shared_keys as sp on sp.field = 'phone' and sp.value = r.phone_nsn
)
-- same mailbox, compatible given names
select l.node as node_l, r.node as node_r, 'email' as rule
from usable as l
inner join usable as r on l.email_link_key = r.email_link_key and l.node < r.node
where {g} and {s}
union all
-- same phone number, same surname, compatible given names, no other country
select l.node, r.node, 'phone_surname'
from usable as l
inner join usable as r on l.phone_link_key = r.phone_link_key and l.node < r.node
where l.last_name_key is not null and r.last_name_key is not null and {s} and {g}
    and coalesce(l.country = r.country, true)
union all
-- an ERP account names its CRM customer, a ticket its account, a logged-in device its CRM customer
select least(l.node, r.node), greatest(l.node, r.node),
    case l.source_system
        when 'erp' then 'erp_crm_reference' when 'support' then 'ticket_crm_reference' else 'event_login'
    end
from identity_records as l
inner join identity_records as r on r.source_system = 'crm' and r.source_record_id = l.ref_crm_customer_id
where l.source_system <> 'crm' and {g} and {s}
union all
select least(l.node, r.node), greatest(l.node, r.node), 'ticket_erp_account'
from identity_records as l
inner join identity_records as r on r.source_system = 'erp' and r.source_record_id = l.ref_erp_account_id
where l.source_system <> 'erp' and {g} and {s};

create or replace temp table identity_reference_conflicts as
select l.record_id, r.record_id as referenced_record_id
from identity_records as l
inner join identity_records as r on r.source_system = 'crm' and r.source_record_id = l.ref_crm_customer_id
where l.source_system <> 'crm' and not ({g} and {s})
union all
select l.record_id, r.record_id
from identity_records as l
inner join identity_records as r on r.source_system = 'erp' and r.source_record_id = l.ref_erp_account_id
where l.source_system <> 'erp' and not ({g} and {s});
"""
