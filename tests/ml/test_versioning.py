"""Content digests and version locks, shared by definitions, the RFM rule table and playbooks."""

from dataclasses import dataclass

import pytest

from ml.versioning import VersionLockError, check_version_lock, content_digest, read_lock


@dataclass
class Item:
    name: str
    version: str
    content_sha256: str


def test_the_digest_ignores_the_version_and_key_order_only():
    a = {"name": "x", "version": "1.0.0", "rules": [1, 2], "k": {"b": 1, "a": 2}}
    assert content_digest(a) == content_digest({"k": {"a": 2, "b": 1}, "rules": [1, 2], "name": "x"})
    assert content_digest(a) != content_digest({**a, "rules": [2, 1]})


def test_the_lock_refuses_unreleased_versions_and_changed_content(tmp_path):
    lock_file = tmp_path / "versions.lock"
    lock_file.write_text('{"x": {"1.0.0": "abc"}}')
    lock = read_lock(lock_file)
    check_version_lock(Item("x", "1.0.0", "abc"), lock)
    with pytest.raises(VersionLockError, match="bump the version"):
        check_version_lock(Item("x", "1.0.0", "def"), lock)
    with pytest.raises(VersionLockError, match="not in versions.lock"):
        check_version_lock(Item("x", "1.1.0", "def"), lock)
    assert read_lock(tmp_path / "missing.lock") == {}
