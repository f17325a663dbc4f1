"""A job of the code location run on bench data: what the identity and segmentation benches share.

Each of those benches generates (or reuses, `bench.data.generate_or_reuse`) its persons under
`<workdir>/demo`, runs one job in a fresh `<workdir>/home` and reads what the job wrote. A bench does
not run the job itself: its caller hands it a `JobRunner` (`segments bench` hands over the command
line's `execute_job`, which also prints the progress), since bench never imports the command line.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, TextIO

from bench.data import generate_or_reuse
from orchestration.settings import Settings, get_settings


class JobOutcome(Protocol):
    """What a bench reads of a finished job run."""

    @property
    def success(self) -> bool: ...

    @property
    def log_path(self) -> Path: ...

    @property
    def seconds(self) -> float: ...

    @property
    def step_seconds(self) -> Mapping[str, float]: ...

    @property
    def step_stages(self) -> Mapping[str, str]: ...


class JobRunner(Protocol):
    """Runs the job `job_name` for `settings` (pinning them for the process) and returns its outcome."""

    def __call__(self, settings: Settings, job_name: str) -> JobOutcome: ...


class BenchFailed(RuntimeError):
    """The bench's job failed: there is nothing to measure."""


@dataclasses.dataclass(frozen=True)
class BenchRun:
    """A successful job run on bench data."""

    workdir: Path
    data: Path  # the demo data: landing/ and truth/
    settings: Settings
    outcome: JobOutcome

    def stage_seconds(self) -> dict[str, float]:
        """Seconds per stage (`orchestration.keys.STAGES`, from the op tags); steps without a stage left out."""
        seconds: dict[str, float] = {}
        for step, took in self.outcome.step_seconds.items():
            stage = self.outcome.step_stages.get(step)
            if stage is not None:
                seconds[stage] = seconds.get(stage, 0.0) + took
        return seconds


def default_workdir(kind: str, persons: int) -> Path:
    return Path(f"data/bench/{kind}-{persons}")


def run_on_bench_data(
    kind: str,
    persons: int,
    seed: int,
    workdir: Path | None,
    job_name: str,
    run_job: JobRunner,
    out: TextIO,
    **volumes: float,
) -> BenchRun:
    """Generate (or reuse) the bench data of `persons` persons in `<workdir>/demo` with the generator's
    default volumes (or `volumes`), run `job_name` on it in a fresh `<workdir>/home`; raises BenchFailed if
    the job fails."""
    work = (workdir or default_workdir(kind, persons)).resolve()
    data, home = work / "demo", work / "home"
    t0 = time.monotonic()
    reused = generate_or_reuse(data, persons, seed, **volumes)
    generate_s = time.monotonic() - t0
    shutil.rmtree(home, ignore_errors=True)
    settings = dataclasses.replace(get_settings(), home=home, landing_dir=data / "landing")
    print(
        f"{kind} bench: {persons:,} persons (seed {seed}), data {data} "
        f"({'reused' if reused else f'generated in {generate_s:.1f} s'})",
        file=out,
        flush=True,
    )
    outcome = run_job(settings, job_name)
    if not outcome.success:
        raise BenchFailed(f"{job_name} FAILED (log: {outcome.log_path})")
    return BenchRun(work, data, settings, outcome)
