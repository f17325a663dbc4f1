"""Deterministic identity rules and the name guard every link must pass, as DuckDB SQL.

Rules run first and explain themselves (`rule` on every edge). Each one is guarded: a shared
e-mail or landline links two records only when their given names are compatible, because
households share contact details without being one person. The same guard vetoes Splink's pairs.

All SQL runs on the identity working table `identity_records` (see `linkage.load_records`), where
`node` is a dense integer id per record.
"""

from __future__ import annotations

from ml.identity.config import IdentityConfig


def given_names_compatible(left: str, right: str, config: IdentityConfig) -> str:
    """SQL: the two records' given names may belong to one person (either missing, the same after
    nickname resolution, or a likely typo of each other: similar spelling, or one letter added,
    dropped or swapped, as in "Ute" / "Ue")."""
    return f"""(
        {left}.given_name_key is null or {right}.given_name_key is null
        or {left}.given_name_key = {right}.given_name_key
        or jaro_winkler_similarity({left}.first_name_key, {right}.first_name_key) >= {config.given_name_similarity}
        or jaro_winkler_similarity({left}.given_name_key, {right}.given_name_key) >= {config.given_name_similarity}
        or (damerau_levenshtein({left}.first_name_key, {right}.first_name_key) <= 1
            and greatest(length({left}.first_name_key), length({right}.first_name_key)) >= 3)
    )"""


def surnames_compatible(left: str, right: str, config: IdentityConfig) -> str:
    """SQL: the surnames are equal or close (missing surnames do not contradict)."""
    return f"""(
        {left}.last_name_key is null or {right}.last_name_key is null
        or jaro_winkler_similarity({left}.last_name_key, {right}.last_name_key) >= {config.surname_similarity}
    )"""


def records_conflict(left: str, right: str, config: IdentityConfig) -> str:
    """SQL: the two records describe different people: incompatible given names, or different
    birth dates."""
    return f"""(
        not {given_names_compatible(left, right, config)}
        or coalesce({left}.birth_date <> {right}.birth_date, false)
    )"""


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
