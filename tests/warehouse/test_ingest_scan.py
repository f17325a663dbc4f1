"""`scan_file` and `non_empty_lines`: a file's SHA-256 and lines, counted apart from any parser."""

from __future__ import annotations

import hashlib
import random

import pytest

from warehouse.ingest import non_empty_lines, scan_file


def reference_lines(data: bytes) -> int:
    """Non-empty lines: pieces between line breaks that hold more than a carriage return before one."""
    pieces = data.split(b"\n")
    return sum(1 for i, p in enumerate(pieces) if not (p == b"" or (p == b"\r" and i < len(pieces) - 1)))


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", 0),
        (b"a", 1),
        (b"a\n", 1),
        (b"a\nb", 2),
        (b"\na\n\n\nb\n", 2),
        (b"a\r\n\r\nb\r\n", 2),
        (b"  \n", 1),  # white space is not empty: the parser sees a record
    ],
)
def test_lines(tmp_path, data, lines):
    path = tmp_path / "f"
    path.write_bytes(data)
    assert non_empty_lines(path) == lines == reference_lines(data)
    scan = scan_file(path)
    assert scan.sha256 == hashlib.sha256(data).hexdigest()
    assert scan.lines == data.count(b"\n") + (not data.endswith(b"\n") and data != b"")


def test_blank_lines_across_chunk_boundaries(tmp_path):
    """Files of several 1 MiB chunks made of line breaks, carriage returns and letters."""
    rng = random.Random(7)
    for size in (1 << 20, (1 << 20) + 1, 3_000_001):
        data = bytes(rng.choice(b"a\n\n\r") for _ in range(size))
        path = tmp_path / f"f{size}"
        path.write_bytes(data)
        assert non_empty_lines(path) == reference_lines(data)
