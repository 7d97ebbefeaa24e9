"""DuckDB, the embedded default warehouse: dialect, client, errors, value adapter, bench sandbox.

Importing this package imports no driver: the client is loaded when a session is opened.
"""

from connectors.warehouses.duckdb.dialect import DuckDBDialect
from connectors.warehouses.plugin import WarehousePlugin
from core.config import DuckDBWarehouse

PLUGIN = WarehousePlugin(
    kind="duckdb",
    config=DuckDBWarehouse,
    dialect=DuckDBDialect,
    client="connectors.warehouses.duckdb.client:DuckDBSession",
    sandbox="connectors.warehouses.duckdb.sandbox:bench_session",
    summary="one file on this machine: the demo, tests, a single reader",
)
