"""The behaviour suite (tests/behaviour/suite.py) on DuckDB and on Snowflake emulated by fakesnow."""

from __future__ import annotations

import pytest

from tests.behaviour.suite import *  # noqa: F403 (the suite's tests, collected here)
from tests.behaviour.warehouses import Warehouse, unit_warehouses


@pytest.fixture(params=unit_warehouses(), ids=lambda w: w.kind)
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    """Each unit-reachable warehouse in turn."""
    return request.param  # type: ignore[no-any-return]
