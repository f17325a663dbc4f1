"""Browser tests run against a real home: the integration tests' isolated SEGMENTS_HOME per module."""

from tests.integration.conftest import segments_home  # noqa: F401 - the fixture, shared
