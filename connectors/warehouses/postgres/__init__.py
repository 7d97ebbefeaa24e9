"""PostgreSQL as a warehouse: dialect, client, errors, value adapter, bench sandbox.

Importing this package imports no driver: the client is loaded when a session is opened.
"""

from connectors.warehouses.plugin import WarehousePlugin
from connectors.warehouses.postgres.dialect import PostgresDialect
from core.config import PostgresWarehouse

PLUGIN = WarehousePlugin(
    kind="postgres",
    config=PostgresWarehouse,
    dialect=PostgresDialect,
    client="connectors.warehouses.postgres.client:PostgresSession",
    sandbox="connectors.warehouses.postgres.sandbox:bench_session",
    summary="a server many readers query while `cdchub run` writes",
)
