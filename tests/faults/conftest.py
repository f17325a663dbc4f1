"""Fixtures of the fault suite: the clean reference homes (built once per session), scenario records and the
closing table of recovery times.

The slow scenarios (`@pytest.mark.faults`, `make test-faults`) run at FAULTS_CUSTOMERS persons (default
20,000). The reference homes are built once per session: `first` after a clean run of the first delivery,
`second` after a clean run of the next period's delivery on a copy of `first`. A scenario copies `first`
(`harness.copy_home`) when it needs "the first delivery done".
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from tests.faults import harness as h

_RECORDS = pytest.StashKey[list]()
_SCALE = pytest.StashKey[int]()
_DIR = pytest.StashKey[Path]()


@dataclasses.dataclass
class References:
    """Clean homes and deliveries every slow scenario starts from and compares with."""

    scale: int
    first: Path  # home after a clean run of delivery 1
    second: Path  # home after clean runs of delivery 1, then delivery 2
    delivery1: list[str]  # landing files (relative paths) of each delivery
    delivery2: list[str]
    fp_first: dict
    fp_second: dict
    seconds_first: float
    seconds_second: float

    def fresh_home(self, dst: Path) -> Path:
        """An empty home whose landing folder holds delivery 1."""
        h.copy_delivery(h.landing_of(self.first), h.landing_of(dst), self.delivery1)
        return dst

    def after_first(self, dst: Path) -> Path:
        """A copy of the home after the clean run of delivery 1 (MLflow paths relocated)."""
        return h.copy_home(self.first, dst)

    def add_delivery2(self, home: Path) -> None:
        h.copy_delivery(h.landing_of(self.second), h.landing_of(home), self.delivery2)


@pytest.fixture(scope="session")
def references(tmp_path_factory, request) -> References:
    scale = h.customers()
    request.config.stash[_SCALE] = scale
    request.config.stash[_DIR] = tmp_path_factory.getbasetemp()
    root = tmp_path_factory.mktemp("faults-reference")
    first = root / "first"
    gen = h.segments(["generate", "--customers", str(scale), "--seed", "42", "--out", str(first / "demo")], home=first)
    assert gen.ok, gen.tail()
    delivery1 = h.landing_files(h.landing_of(first))
    h.backdate(h.landing_of(first) / f for f in delivery1)
    run1 = h.segments(h.run_args(first), home=first)
    assert run1.ok, f"clean run of delivery 1: {run1.describe()}\n{run1.tail()}"
    fp_first = h.fingerprint(first)
    second = h.copy_home(first, root / "second")
    gen2 = h.segments(["generate", "--next-period", "--out", str(second / "demo")], home=second)
    assert gen2.ok, gen2.tail()
    delivery2 = sorted(set(h.landing_files(h.landing_of(second))) - set(delivery1))
    assert delivery2, "generate --next-period wrote no landing file"
    h.backdate(h.landing_of(second) / f for f in delivery2)
    run2 = h.segments(h.run_args(second), home=second)
    assert run2.ok, f"clean run of delivery 2: {run2.describe()}\n{run2.tail()}"
    assert "No new landing file" not in run2.stdout, run2.tail()
    record(request, "reference", "none: clean run of delivery 1", "segments run", run1.seconds, run1.describe(), "pass")
    record(request, "reference", "none: clean run of delivery 2", "segments run", run2.seconds, run2.describe(), "pass")
    return References(
        scale, first, second, delivery1, delivery2, fp_first, h.fingerprint(second), run1.seconds, run2.seconds
    )


def record(request, scenario: str, fault: str, recovery: str, seconds, outcome: str, verdict: str) -> h.Record:
    rec = h.Record(scenario, fault, recovery, seconds, outcome, verdict)
    request.config.stash.setdefault(_RECORDS, []).append(rec)
    return rec


class Scenario:
    """A scenario's row of the closing table; `check` fails the test with every reason at once."""

    def __init__(self, request, fault: str):
        self.request = request
        self.rec = record(request, request.node.name, fault, "-", None, "-", "?")

    def recovered(self, outcome: h.Outcome, command: str = "segments run --landing H/demo/landing") -> None:
        self.rec.recovery, self.rec.seconds, self.rec.outcome = command, outcome.seconds, outcome.describe()

    def check(self, problems: list[str], details: str = "") -> None:
        if problems:
            self.rec.verdict = "FAIL: " + "; ".join(p.splitlines()[0][:200] for p in problems)
            pytest.fail("\n".join(problems) + (f"\n{details}" if details else ""), pytrace=False)
        self.rec.verdict = "pass"

    def require(self, problem: str | None, details: str = "") -> None:
        """Fail now when `problem` is set (nothing after it can be judged)."""
        if problem:
            self.check([problem], details)


@pytest.fixture
def scenario(request, tmp_path_factory) -> Scenario:
    """The scenario's row of the closing table (the test sets `scenario.rec.fault`)."""
    request.config.stash.setdefault(_DIR, tmp_path_factory.getbasetemp())
    return Scenario(request, "")


def recover(sc: Scenario, home: Path, reference: dict, *, reaped: bool = True, tz: str = "UTC") -> h.Outcome:
    """The recovery: a plain `segments run` on `home`; it must end (not hang), exit 0, print `reaped run ...`
    when a dead run was left behind (`reaped`), and leave the home equal to `reference` (harness.compare).

    Whether the recovery redoes work is not judged, only where it ends: a run killed after its publication was
    committed left nothing to do, one killed after its ingest left everything after the ingest to do (a
    recovery that skips then leaves marts, segments and the BI copy behind the raw tables: `compare` fails)."""
    outcome = h.segments(h.run_args(home), home=home, tz=tz)
    sc.recovered(outcome)
    sc.require(outcome.hung and f"recovery hung: {outcome.hung}", outcome.tail())
    problems = []
    if outcome.returncode != 0:
        problems.append(f"recovery exited {outcome.returncode}")
    if reaped and not any(line.lstrip().startswith("reaped run ") for line in outcome.lines()):
        problems.append("recovery printed no 'reaped run ...' line for the dead run")
    problems += h.compare(reference, h.fingerprint(home))
    sc.check(problems, outcome.tail())
    return outcome


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    records = config.stash.get(_RECORDS, [])
    if not records:
        return
    scale = config.stash.get(_SCALE, h.customers())
    table = h.format_table(records, scale)
    out = config.stash.get(_DIR, Path(config.rootpath) / ".pytest_cache") / "faults-timings.json"
    with_time = {"scale": scale, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**with_time, "scenarios": [r.as_dict() for r in records]}, indent=1))
    except OSError:
        out = None
    terminalreporter.section("fault scenarios: recovery times")
    terminalreporter.write_line(table)
    if out:
        terminalreporter.write_line(f"(as JSON: {out})")
