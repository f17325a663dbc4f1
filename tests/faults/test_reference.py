"""The harness proves itself: two clean runs of the same deliveries compare equal, different ones do not."""

from __future__ import annotations

import pytest

from tests.faults import harness as h

pytestmark = pytest.mark.faults


def test_two_clean_runs_compare_equal(references, tmp_path, scenario):
    """A second clean home, built from scratch (not a copy), equals the reference after each delivery; the
    copy of a home (MLflow paths relocated) runs on its own; the comparison tells the deliveries apart."""
    scenario.rec.fault = "none: clean runs of deliveries 1 and 2 on a fresh home, vs the reference"
    home = references.fresh_home(tmp_path / "home")
    run1 = h.segments(h.run_args(home), home=home)
    scenario.require(not run1.ok and f"clean run 1: {run1.describe()}", run1.tail())
    problems = [f"after delivery 1: {d}" for d in h.compare(references.fp_first, h.fingerprint(home))]
    copy = h.copy_home(home, tmp_path / "copy")
    references.add_delivery2(copy)
    run2 = h.segments(h.run_args(copy), home=copy)
    scenario.recovered(run2, "segments run (delivery 2, on a copy)")
    scenario.require(not run2.ok and f"clean run 2: {run2.describe()}", run2.tail())
    problems += [f"after delivery 2: {d}" for d in h.compare(references.fp_second, h.fingerprint(copy))]
    # the copy's runs wrote nothing into the home it was copied from
    problems += [f"original after the copy ran: {d}" for d in h.compare(references.fp_first, h.fingerprint(home))]
    if not h.compare(references.fp_first, references.fp_second):
        problems.append("the comparison sees no difference between delivery 1 and deliveries 1+2")
    scenario.check(problems)
