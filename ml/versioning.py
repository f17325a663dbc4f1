"""Content digests and version locks: a released version's content never changes silently.

Segment definitions, the RFM rule table and the playbooks are versioned configuration. Each carries
a semantic `version`; its content digest (sha256 of the canonical JSON without the version) is
recorded per released version in a lock (`versions.lock`, or a dict in code). Content that differs
from the digest recorded for its version is refused: change the content -> bump the version and
record the new digest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol


class VersionLockError(ValueError):
    """Content that is not what was released under its version, or a version never released."""


class Versioned(Protocol):
    name: str
    version: str
    content_sha256: str


def content_digest(raw: dict[str, Any]) -> str:
    """sha256 of the content without its `version` (canonical JSON: sorted keys, no spaces)."""
    body = {k: v for k, v in raw.items() if k != "version"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_lock(path: Path) -> dict[str, dict[str, str]]:
    """name -> version -> digest, from a JSON lock file (empty when the file does not exist)."""
    return json.loads(Path(path).read_text()) if Path(path).exists() else {}


def check_version_lock(item: Versioned, lock: dict[str, dict[str, str]]) -> None:
    """Raise VersionLockError unless `item`'s content is what was released under its version."""
    recorded = lock.get(item.name, {}).get(item.version)
    if recorded is None:
        raise VersionLockError(
            f"{item.name} {item.version} is not in versions.lock: when you release it, run "
            f"`segments definitions lock` (it records the digest {item.content_sha256})"
        )
    if recorded != item.content_sha256:
        raise VersionLockError(
            f"{item.name} changed but its version {item.version} did not: bump the version, then run "
            f"`segments definitions lock` (new digest {item.content_sha256})"
        )


def record_versions(path: Path, items: list[Versioned]) -> list[str]:
    """Record in the lock file at `path` every item's version not recorded yet; return what was added
    ("name version"). Content that differs from the digest of an already recorded version is refused
    (VersionLockError, nothing written): a released version never changes."""
    lock = read_lock(path)
    added = []
    for item in items:
        recorded = lock.get(item.name, {}).get(item.version)
        if recorded is not None and recorded != item.content_sha256:
            raise VersionLockError(
                f"{item.name} {item.version} was released with other content: bump its version "
                "(a released version never changes), then lock again"
            )
        if recorded is None:
            lock.setdefault(item.name, {})[item.version] = item.content_sha256
            added.append(f"{item.name} {item.version}")
    if added or not Path(path).exists():
        ordered = {name: dict(sorted(versions.items())) for name, versions in sorted(lock.items())}
        Path(path).write_text(json.dumps(ordered, indent=2) + "\n")
    return added
