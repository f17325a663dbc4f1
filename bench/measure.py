"""Wall time and peak memory of a command's whole process tree (Linux /proc, no dependency).

`run_measured()` starts a command, samples the resident set size (RSS) of the process and of every
descendant (dbt, MLflow and DuckDB work may run in children) every `interval` seconds, and returns
the wall time, the peak of the summed RSS and the samples with their wall-clock instants, so a
caller can attribute memory to the stages it knows the start and end of. Summed RSS counts shared
library pages once per process, so it is an upper bound of what the tree really holds.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class Measurement:
    """One measured command: exit code, seconds, peak tree RSS (bytes) and (epoch, rss) samples."""

    command: list[str]
    returncode: int
    started_at: float
    seconds: float
    peak_rss_bytes: int
    samples: list[tuple[float, int]] = field(default_factory=list)

    def peak_between(self, start: float, end: float) -> int:
        """Peak tree RSS among samples taken in [start, end] (wall-clock epoch seconds); when the
        window is shorter than the sampling interval, the nearest sample before it counts too."""
        inside = [rss for t, rss in self.samples if start <= t <= end]
        before = [rss for t, rss in self.samples if t < start][-1:]
        return max(inside + before, default=0)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: fields follow the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss_bytes(root: int) -> int:
    """Summed RSS of `root` and all its descendants right now."""
    children = _children_map()
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_bytes(pid)
        stack.extend(children.get(pid, ()))
    return total


def run_measured(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    log_path: Path | None = None,
    interval: float = 0.2,
) -> Measurement:
    """Run `command` to completion (stdout and stderr to `log_path` or discarded) while sampling."""
    samples: list[tuple[float, int]] = []
    out = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    started_at = time.time()
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append((time.time(), tree_rss_bytes(proc.pid)))
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 also reports the largest single RSS any process of the tree reached, which catches a
        # spike shorter than the sampling interval.
        _, status, usage = os.wait4(proc.pid, 0)
        returncode = proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    finally:
        if log_path:
            out.close()
    seconds = time.monotonic() - t0
    peak = max([r for _, r in samples] + [usage.ru_maxrss * 1024])
    return Measurement(command, returncode, started_at, seconds, peak, samples)


def gib(n_bytes: int) -> float:
    return n_bytes / 2**30


__all__ = ["Measurement", "run_measured", "tree_rss_bytes", "gib"]
