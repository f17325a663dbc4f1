"""Identity on records that carry no e-mail and no phone, and reviewers' overrides.

A CRM-only delivery of a few hundred people typed by hand (names with typos and nicknames, birth
dates with a wrong digit, missing fields, postal codes) must link its duplicates from what the
records carry; a reviewer's override file changes the clusters and the ledger says who and why.
"""

from __future__ import annotations

import random
from collections import Counter

import duckdb
import pytest

from ml.identity.config import IdentityConfig
from ml.identity.overrides import OverridesError, append_decision, read_overrides
from ml.identity.resolve import OVERRIDES_FILE, resolve_warehouse
from tests.ml.identity.fixtures import candidate, create_candidates

GIVEN = [
    "anna",
    "ben",
    "clara",
    "david",
    "emma",
    "felix",
    "greta",
    "hugo",
    "ida",
    "jonas",
    "karla",
    "leon",
    "mila",
    "noah",
    "olga",
    "paul",
    "rosa",
    "simon",
    "tara",
    "ulrich",
    "vera",
    "walter",
    "xenia",
    "yusuf",
]
SURNAMES = [
    "berg",
    "dahl",
    "ek",
    "fors",
    "gran",
    "holm",
    "lind",
    "moberg",
    "nyberg",
    "oster",
    "palm",
    "quist",
    "rask",
    "strand",
    "thorn",
    "udd",
    "vall",
    "wik",
    "ahl",
    "boman",
    "carlsson",
    "dufva",
    "eng",
    "falk",
]


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word))
    return word[:i] + word[i + 1 :] if rng.random() < 0.5 else word[:i] + word[i] + word[i:]


def people(n_people: int = 200, seed: int = 3) -> tuple[list[dict], dict[str, int]]:
    """CRM records of `n_people` people, 1-3 records each, no e-mail or phone; returns (records, person of each)."""
    rng = random.Random(seed)
    rows, person = [], {}
    for p in range(n_people):
        given, surname = rng.choice(GIVEN), rng.choice(SURNAMES)
        birth = f"19{rng.randint(40, 99)}-{rng.randint(1, 12):02d}-{rng.randint(11, 28):02d}"
        postal = f"{rng.randint(10000, 99999)}"
        for r in range(rng.choice([1, 2, 2, 3])):
            g, s, b, pc = given, surname, birth, postal
            if r:  # a duplicate typed again: one error of one kind, sometimes a missing field (swapped names
                # come without the postal code: the names and the birth date must carry the link)
                kind = rng.choice(["given", "surname", "birth", "postal", "missing_postal", "swapped", "none"])
                g, s = (s, g) if kind == "swapped" else (g, s)
                g = typo(g, rng) if kind == "given" else g
                s = typo(s, rng) if kind == "surname" else s
                b = b[:-1] + str((int(b[-1]) + 1) % 9) if kind == "birth" else b  # a day off by one digit
                pc = None if kind in ("missing_postal", "swapped") else (pc[:-1] + "0" if kind == "postal" else pc)
            record = f"crm:P{p:03d}R{r}"
            rows.append(candidate(record, first_name_key=g, last_name_key=s, birth_date=b, postal_code_key=pc))
            person[record] = p
    return rows, person


def pairwise(assigned: dict[str, str], person: dict[str, int]) -> tuple[float, float]:
    def pairs(groups: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in groups.values())

    true = pairs(Counter(person.values()))
    predicted = pairs(Counter(assigned.values()))
    correct = pairs(Counter((assigned[r], person[r]) for r in assigned))
    return correct / max(predicted, 1), correct / max(true, 1)


def build(tmp_path, rows) -> duckdb.DuckDBPyConnection:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists intermediate")
        create_candidates(con, "intermediate.int_identity_candidates", rows)
    return path


def assignment(path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.execute("select record_id, customer_id from identity.customer_source_records").fetchall())


def test_crm_records_without_email_or_phone_link_their_duplicates(tmp_path):
    rows, person = people()
    path = build(tmp_path, rows)
    run = resolve_warehouse(path, IdentityConfig(), "run-1", tmp_path / "identity")
    precision, recall = pairwise(assignment(path), person)
    assert recall >= 0.9, (precision, recall, run.linkage.describe())
    assert precision >= 0.97, (precision, recall)
    plan = run.linkage.describe()
    # the model was built from the fields present, trained on this delivery, and says so
    assert set(plan["comparisons"]) == {"given_name", "last_name", "birth_date", "postal_code"}
    assert plan["match_threshold"]["source"].startswith("expected_f")
    assert not any("not trained" in note for note in plan["notes"])
    with duckdb.connect(str(path), read_only=True) as con:
        stored = con.execute(
            "select match_threshold, linkage ->> '$.comparisons' from identity.resolution_runs"
        ).fetchall()
    assert stored[0][0] == pytest.approx(plan["match_threshold"]["value"])


def test_given_name_and_surname_swapped_between_records_still_link(tmp_path):
    rows, person = people()
    path = build(tmp_path, rows)
    resolve_warehouse(path, IdentityConfig(), "run-1", tmp_path / "identity")
    assigned = assignment(path)
    by_record = {r["record_id"]: r for r in rows}
    swapped = [
        (f"crm:P{p:03d}R0", record)
        for record, p in person.items()
        if not record.endswith("R0")
        and by_record[record]["first_name_key"] == by_record[f"crm:P{p:03d}R0"]["last_name_key"]
        and by_record[record]["last_name_key"] == by_record[f"crm:P{p:03d}R0"]["first_name_key"]
    ]
    assert len(swapped) >= 10
    linked = [pair for pair in swapped if assigned[pair[0]] == assigned[pair[1]]]
    assert len(linked) / len(swapped) >= 0.9, (len(linked), len(swapped))


def test_without_names_and_dates_nothing_is_linked_and_the_notes_say_why(tmp_path):
    rows = [candidate(f"crm:C{i}", postal_code_key="10115") for i in range(30)]
    path = build(tmp_path, rows)
    run = resolve_warehouse(path, IdentityConfig(), "run-1", tmp_path / "identity")
    assert len(set(assignment(path).values())) == 30
    assert run.linkage.describe()["pairs_scored"] == 0


def test_overrides_change_the_clusters_and_the_ledger_says_why(tmp_path):
    rows, person = people(60)
    path = build(tmp_path, rows)
    identity = tmp_path / "identity"
    resolve_warehouse(path, IdentityConfig(), "run-1", identity)
    before = assignment(path)
    # two records of different people, and two records of one person that were linked
    apart = sorted(before, key=lambda r: (before[r], r))
    a, b = next((x, y) for x in apart for y in apart if person[x] != person[y] and before[x] != before[y] and x < y)
    c, d = next((x, y) for x in apart for y in apart if x < y and before[x] == before[y])
    append_decision(identity / OVERRIDES_FILE, a, b, "link", "anna.k", "same person: married name")
    append_decision(identity / OVERRIDES_FILE, c, d, "never-link", "ben.o", "twins at one address")
    run = resolve_warehouse(path, IdentityConfig(), "run-2", identity)
    after = assignment(path)
    assert after[a] == after[b]
    assert after[c] != after[d]
    assert run.linkage.overrides.links == 1 and run.linkage.overrides.never_links == 1
    with duckdb.connect(str(path), read_only=True) as con:
        reasons = [
            r for (r,) in con.execute("select reason from identity.identity_ledger where run_id = 'run-2'").fetchall()
        ]
        recorded = con.execute(
            "select linkage ->> '$.overrides.sha256' from identity.resolution_runs where run_id = 'run-2'"
        ).fetchall()
    assert any("override link by anna.k: same person: married name" in r for r in reasons), reasons
    assert any("override never_link by ben.o: twins at one address" in r for r in reasons), reasons
    assert recorded[0][0] and len(recorded[0][0]) == 64
    # resolving again with the same decisions changes nothing
    resolve_warehouse(path, IdentityConfig(), "run-3", identity)
    assert assignment(path) == after


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n", "missing column"),
        ("record_id_l,record_id_r,decision,decided_by,reason\ncrm:A,crm:B,merge,x,y\n", "line 2: decision 'merge'"),
        ("record_id_l,record_id_r,decision,decided_by,reason\ncrm:A,crm:B,link,,y\n", "line 2: decided_by"),
        ("record_id_l,record_id_r,decision,decided_by,reason\ncrm:A,crm:A,link,x,y\n", "with itself"),
    ],
)
def test_a_bad_overrides_file_is_refused_with_its_line(tmp_path, content, message):
    path = tmp_path / "overrides.csv"
    path.write_text(content)
    with pytest.raises(OverridesError, match=message):
        read_overrides(path)
