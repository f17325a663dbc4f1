"""A delivery still being written when a run starts: applied exactly once, with the right values.

Both files of delivery 2 (orders and their lines) grow slice by slice from before the run starts until a
second after its ingest starts, then get their rest at once (a copy in progress). The ingest must leave a
file alone until its size and mtime have been stable for SEGMENTS_LANDING_SETTLE_SECONDS (or it has a
`.done` marker); a plain run after the settle time then applies the delivery. The home must equal the clean
run of both deliveries: no half file loaded, no row quarantined as a duplicate or a parse error.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.faults import harness as h

pytestmark = pytest.mark.faults

SETTLE = 2.0


class Writer(threading.Thread):
    """Appends `slices` pieces of each file's first 80 %, one piece of each every `every` s, until `stop`;
    then writes the rest of every file at once."""

    def __init__(self, files: dict, slices: int = 240, every: float = 0.5):
        super().__init__(daemon=True)
        self.files, self.slices, self.every = files, slices, every
        self.stop = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        handles = {path: path.open("wb") for path in self.files}
        try:
            cuts = {
                p: [len(data) * 8 // 10 * i // self.slices for i in range(self.slices + 1)]
                for p, data in self.files.items()
            }
            for i in range(self.slices):
                for path, data in self.files.items():
                    handles[path].write(data[cuts[path][i] : cuts[path][i + 1]])
                    handles[path].flush()
                if self.stop.wait(self.every):
                    break
            self.stop.wait()
            for path, data in self.files.items():
                handles[path].seek(0, 2)
                handles[path].write(data[handles[path].tell() :])
                handles[path].flush()
        finally:
            for fh in handles.values():
                fh.close()
            self.done.set()


def test_growing_delivery(references, tmp_path, scenario):
    home = references.after_first(tmp_path / "home")
    scenario.rec.fault = "delivery 2 still being written when the run starts (both files growing)"
    src, dst = h.landing_of(references.second), h.landing_of(home)
    files = {}
    for rel in references.delivery2:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        files[dst / rel] = (src / rel).read_bytes()
    writer = Writer(files)
    writer.start()
    env = {"SEGMENTS_LANDING_SETTLE_SECONDS": str(SETTLE)}
    try:
        with h.Cli(h.run_args(home), home=home, env=env) as cli:
            cli.wait_line(h.stage_start("ingest"), timeout=h.run_timeout())
            time.sleep(1.0)
            writer.stop.set()
            writer.done.wait(30)
            during = cli.wait()
    finally:
        writer.stop.set()
        writer.done.wait(30)
    problems = []
    if not during.ok:
        problems.append(f"the run during the copy: {during.describe()}")
    assert all(p.read_bytes() == data for p, data in files.items()), "the writer did not finish the files"
    time.sleep(SETTLE + 1)
    after = h.segments(h.run_args(home), home=home, env=env)
    scenario.recovered(after)
    if not after.ok:
        problems.append(f"the plain run after the copy: {after.describe()}")
    problems += h.compare(references.fp_second, h.fingerprint(home))
    scenario.check(problems, during.tail() + "\n" + after.tail())
