"""Bench data: when a data folder's demo landing files can be reused instead of generated again.

Every bench generates its persons with the demo generator, which takes minutes at a million
persons; a folder that already holds the same persons, seed and volumes is reused. The generator's
`truth/manifest.json` records what it was asked for, so the rule is decided from it alone, in one
place for the pipeline bench (`bench/pipeline.py`, volumes of its own) and the identity and
segmentation benches (`bench/identity.py`, `bench/segmentation.py`: the generator's default volumes,
generated here in-process by `generate_or_reuse`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

# the generator's volume parameters a bench may set; the manifest records each of them
VOLUME_PARAMETERS = (
    "orders_per_customer",
    "lines_per_order",
    "tickets_per_customer",
    "duplicate_rate",
    "no_contact_share",
)


def default_volumes() -> dict[str, float]:
    """The volumes `demo.generator.generate` uses when none is given (read from its signature, so
    they cannot drift from the generator)."""
    import inspect

    from demo.generator import generate

    parameters = inspect.signature(generate).parameters
    return {name: parameters[name].default for name in VOLUME_PARAMETERS}


def reusable(data: Path, persons: int, seed: int, volumes: Mapping[str, float]) -> bool:
    """True when `data` holds demo data generated for `persons` persons with `seed` and `volumes`,
    as its manifest says; False when there is no manifest or any of them differs."""
    manifest = data / "truth" / "manifest.json"
    if not manifest.exists():
        return False
    meta = json.loads(manifest.read_text())
    return (
        meta.get("customers") == persons
        and meta.get("seed") == seed
        and all(meta.get(name) == value for name, value in volumes.items())
    )


def generate_or_reuse(data: Path, persons: int, seed: int, **volumes: float) -> bool:
    """Write the demo data of `persons` persons with `seed` and the generator's default volumes (or
    `volumes`, names of VOLUME_PARAMETERS) into `data`, unless it holds them already (`reusable`);
    True when it was reused."""
    from demo.generator import generate

    unknown = set(volumes) - set(VOLUME_PARAMETERS)
    if unknown:
        raise ValueError(f"not a volume parameter: {', '.join(sorted(unknown))}")
    if reusable(data, persons, seed, {**default_volumes(), **volumes}):
        return True
    generate(data, customers=persons, seed=seed, **volumes)
    return False
