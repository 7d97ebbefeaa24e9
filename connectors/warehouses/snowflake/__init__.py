"""Snowflake: dialect, client, errors, value adapter, bench sandbox.

Importing this package imports no driver: the client is loaded when a session is opened.
"""

from connectors.warehouses.plugin import WarehousePlugin
from connectors.warehouses.snowflake.dialect import SnowflakeDialect
from core.config import SnowflakeWarehouse

PLUGIN = WarehousePlugin(
    kind="snowflake",
    config=SnowflakeWarehouse,
    dialect=SnowflakeDialect,
    client="connectors.warehouses.snowflake.client:SnowflakeSession",
    sandbox="connectors.warehouses.snowflake.sandbox:bench_session",
    summary="the analytics warehouse is Snowflake",
)
