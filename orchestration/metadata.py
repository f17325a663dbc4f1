"""Plain values from the domain packages -> Dagster metadata (dicts and lists become JSON entries)."""

from collections.abc import Mapping
from typing import Any

import dagster as dg


def to_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v for k, v in values.items()}
