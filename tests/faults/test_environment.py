"""The home's environment fails: a full disk, a read-only home, other time zones.

Disk full and read-only put SEGMENTS_HOME on a tmpfs (root only: skipped where mount is not permitted).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest

from tests.faults import harness as h
from tests.faults.conftest import recover

pytestmark = pytest.mark.faults

TRACEBACK = "Traceback (most recent call last)"


def _failed_cleanly(outcome: h.Outcome, words: str) -> list[str]:
    """A run that must fail with a message, not a traceback: non-zero exit, a line containing `words`."""
    problems = []
    if outcome.hung:
        return [f"the run hung: {outcome.hung}"]
    if outcome.returncode == 0:
        problems.append("the run exited 0")
    if not any(words in line.lower() for line in outcome.lines()):
        problems.append(f"no line containing {words!r}")
    if TRACEBACK in outcome.stdout + outcome.stderr:
        problems.append("a raw traceback on the console")
    return problems


def _remount(mnt: Path, options: str) -> None:
    try:
        h.remount(mnt, options)
    except h.MountNotPermitted as err:
        pytest.skip(f"remount not permitted here: {err}")


@pytest.fixture
def mounted(tmp_path):
    """A factory of tmpfs mounts under tmp_path (skips the test where mounting is not permitted)."""
    stack = []

    def make(size: int) -> Path:
        cm = h.tmpfs(tmp_path / f"mnt{len(stack)}", size)
        try:
            path = cm.__enter__()
        except h.MountNotPermitted as err:
            pytest.skip(f"tmpfs not permitted here: {err}")
        stack.append(cm)
        return path

    yield make
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def test_disk_full(references, mounted, scenario):
    """A second-delivery run on a tmpfs with room for a third of what the run writes: the run fails with
    `disk full`; after the tmpfs is grown, a plain run recovers."""
    first = h.du(references.first)
    growth = max(h.du(references.second) - first, 1 << 20)
    size = first + growth // 3
    mnt = mounted(size)
    home = references.after_first(mnt / "home")
    references.add_delivery2(home)
    scenario.rec.fault = (
        f"disk full: SEGMENTS_HOME on a {size / 2**20:.0f} MiB tmpfs (a third of the run's growth free)"
    )
    failed = h.segments(h.run_args(home), home=home)
    problems = [f"on the full disk: {p}" for p in _failed_cleanly(failed, "disk full")]
    _remount(mnt, f"size={4 * (first + growth)}")
    try:
        recover(scenario, home, references.fp_second, reaped=False)
    except pytest.fail.Exception as err:
        problems.append(str(err))
    scenario.check(problems, failed.tail())


def test_read_only_home(references, mounted, scenario):
    """A second-delivery run on a home remounted read-only: the run fails with `read-only`; remounted
    read-write, a plain run recovers."""
    mnt = mounted(4 * h.du(references.second))
    home = references.after_first(mnt / "home")
    references.add_delivery2(home)
    scenario.rec.fault = "read-only home: the tmpfs under SEGMENTS_HOME remounted ro"
    _remount(mnt, "ro")
    try:
        failed = h.segments(h.run_args(home), home=home)
    finally:
        h.remount(mnt, "rw")
    problems = [f"on the read-only home: {p}" for p in _failed_cleanly(failed, "read-only")]
    try:
        recover(scenario, home, references.fp_second, reaped=False)
    except pytest.fail.Exception as err:
        problems.append(str(err))
    scenario.check(problems, failed.tail())


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def _outside(home: Path, sql: str, start: dt.datetime, end: dt.datetime, what: str) -> list[str]:
    """Timestamps of `sql` that are not between `start` and `end` (UTC, a minute of slack each side)."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        values = [_as_utc(v) for (v,) in con.execute(sql).fetchall()]
    finally:
        con.close()
    slack = dt.timedelta(minutes=1)
    bad = [v for v in values if not (start - slack <= v <= end + slack)]
    if not values:
        return [f"{what}: no rows"]
    if bad:
        return [
            f"{what}: {len(bad)} of {len(values)} not UTC times of the run ({start:%H:%M:%S}-{end:%H:%M:%S} UTC), "
            f"e.g. {bad[0]:%Y-%m-%d %H:%M:%S}"
        ]
    return []


@pytest.mark.parametrize(
    ("tz1", "tz2"),
    [
        pytest.param("America/Los_Angeles", "Asia/Tokyo", id="LA-then-Tokyo"),
        # local times going backwards between runs (17 h): what a history kept in local time cannot take
        pytest.param("Asia/Tokyo", "America/Los_Angeles", id="Tokyo-then-LA"),
    ],
)
def test_mixed_time_zones(references, tmp_path, scenario, tz1, tz2):
    """Delivery 1 under one TZ, delivery 2 under another, on one home: the second run succeeds, the home
    equals the clean runs under UTC, and the times a run records are UTC."""
    scenario.rec.fault = f"first run TZ={tz1}, next run TZ={tz2}"
    home = references.fresh_home(tmp_path / "home")
    t0 = _utc_now()
    run1 = h.segments(h.run_args(home), home=home, tz=tz1)
    t1 = _utc_now()
    scenario.require(not run1.ok and f"run 1 ({tz1}): {run1.describe()}", run1.tail())
    references.add_delivery2(home)
    t2 = _utc_now()
    run2 = h.segments(h.run_args(home), home=home, tz=tz2)
    t3 = _utc_now()
    scenario.recovered(run2, f"TZ={tz2} segments run --landing H/demo/landing")
    scenario.require(run2.hung and f"run 2 ({tz2}) hung: {run2.hung}", run2.tail())
    problems = [] if run2.returncode == 0 else [f"run 2 ({tz2}) exited {run2.returncode}"]
    if run2.returncode != 0:
        problems += [line.strip() for line in run2.stdout.splitlines() if re.match(r"\s+(FAILED|check error)", line)]
    d1 = ", ".join(repr(f) for f in references.delivery1)
    d2 = ", ".join(repr(f) for f in references.delivery2)
    problems += _outside(
        home, f"select loaded_at from audit.ingest_ledger where source_file in ({d1})", t0, t1, "ledger, run 1"
    )
    problems += _outside(
        home, f"select loaded_at from audit.ingest_ledger where source_file in ({d2})", t2, t3, "ledger, run 2"
    )
    problems += _outside(home, "select min(scored_at) from ml.segment_scoring_runs", t0, t1, "scoring run 1")
    if run2.returncode == 0:
        problems += _outside(home, "select max(scored_at) from ml.segment_scoring_runs", t2, t3, "scoring run 2")
        problems += h.compare(references.fp_second, h.fingerprint(home))
    scenario.check(problems, run2.tail())
