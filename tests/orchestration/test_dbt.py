"""The dbt resource's shortcuts rest on dagster-dbt internals: they must still exist after an upgrade."""

from __future__ import annotations

import importlib.metadata
from functools import cached_property

from dagster_dbt import DbtCliResource

from orchestration.dbt import WarehouseDbtResource, dbt_resource


def test_the_overridden_members_exist_in_dagster_dbt():
    # a rename would leave the overrides unused: runs slower, silently
    assert isinstance(DbtCliResource.__dict__.get("_cli_version"), cached_property)
    assert callable(DbtCliResource.__dict__.get("_initialize_dbt_core_adapter"))


def test_the_version_is_the_installed_dbt_cores_without_a_subprocess():
    resource = dbt_resource()
    assert isinstance(resource, WarehouseDbtResource)
    assert str(resource._cli_version) == importlib.metadata.version("dbt-core")
    assert resource._initialize_dbt_core_adapter(["build"]) is None
