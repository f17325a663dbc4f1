"""A second `segments run` on the same home while one runs: refused at once (exit 3, `error: ... <pid>`), or,
with `--wait`, run after the first; the first finishes normally and the delivery is applied once."""

from __future__ import annotations

import time

import pytest

from tests.faults import harness as h

pytestmark = pytest.mark.faults


def refusal_problems(second: h.Outcome, holder_pid: int, *, within: float = 30.0) -> list[str]:
    """What is wrong with the second run's refusal (empty when it was refused as it should be)."""
    if second.hung:
        return [f"the second run was not refused: still running ({second.hung})"]
    problems = []
    if second.returncode != 3:
        problems.append(f"the second run exited {second.returncode}, not 3")
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    if not any(str(holder_pid) in line for line in errors):
        problems.append(f"no stderr line 'error: ...' naming the holder's pid {holder_pid} (got {errors or 'none'})")
    if any(line.startswith("  ... [") for line in second.stdout.splitlines()):
        problems.append("the second run started steps")
    if second.seconds > within:
        problems.append(f"the refusal took {second.seconds:.1f} s")
    return problems


def test_concurrent_run(references, tmp_path, scenario):
    home = references.after_first(tmp_path / "home")
    references.add_delivery2(home)
    scenario.rec.fault = "a second `segments run` (and one with --wait) on the same home during a run"
    problems = []
    details = ""
    with h.Cli(h.run_args(home), home=home) as first:
        if first.wait_line(h.stage_start("dbt"), timeout=h.run_timeout()) is None:
            out = first.wait(timeout=5, stall=5)
            scenario.require(f"the first run never reached dbt: {out.describe()}", out.tail())
        second = h.segments(h.run_args(home), home=home, timeout=60, stall=60)
        problems += refusal_problems(second, first.pid)
        with h.Cli(h.run_args(home, "--wait"), home=home) as waiting:
            early = waiting.wait_line(lambda text: text.startswith("  ... ["), timeout=10)
            if waiting.popen.poll() is not None:
                out = waiting.wait(timeout=5, stall=5)
                problems.append(f"`segments run --wait` did not wait: {out.describe()}: {out.tail(5)}")
            elif early is not None:
                problems.append(
                    f"`segments run --wait` started a step while the first run holds the home: {early.text}"
                )
            out1 = first.wait()
            first_end = time.monotonic()
            scenario.recovered(out1, "(none: the first run finishes)")
            details = out1.tail()
            if not out1.ok:
                problems.append(f"the first run did not finish normally: {out1.describe()}")
            out3 = waiting.wait()
            if waiting.popen.returncode is not None and not out3.hung and out3.returncode == 0:
                step = next((ln for ln in waiting._lines if ln.text.startswith("  ... [")), None)
                if step is not None and step.at < first_end - 1:
                    problems.append("the --wait run started steps before the first run ended")
            elif not any("did not wait" in p for p in problems):
                problems.append(f"the --wait run: {out3.describe()}")
    problems += h.compare(references.fp_second, h.fingerprint(home))
    scenario.check(problems, details)
