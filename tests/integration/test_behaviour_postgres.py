"""The behaviour suite (tests/behaviour/suite.py) on the integration stack's PostgreSQL warehouse."""

from __future__ import annotations

import pytest

from tests.behaviour.suite import *  # noqa: F403 (the suite's tests, collected here)
from tests.behaviour.warehouses import Warehouse, postgres_warehouse
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

# Every schema a suite test writes to (dropped before each test, with the control schema).
SCHEMAS = ("typespg", "typesmy", "src")


@pytest.fixture
def warehouse(stack: Stack) -> Warehouse:
    """The stack's PostgreSQL warehouse database, as a user would configure it."""
    return postgres_warehouse(stack.layout.pg_warehouse_config(), SCHEMAS)
