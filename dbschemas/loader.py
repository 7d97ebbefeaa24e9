"""Create, seed and expose the demo databases on the local stack.

`load_demo_schemas` is idempotent so `cdchub demo` can call it every time: databases and tables are
created only when missing, seed rows are written only into empty tables, and the grants and the
PostgreSQL publication are (re)applied on every call.

Demo sources are recognised by kind and database name: a `postgres` source on database `shop`
gets `shop/postgres.sql`; a `mariadb`/`mysql` source on database `inventory` gets
`inventory/mariadb.sql` (`postgres_shop.load_shop`, `mariadb_inventory.load_inventory`).
Both are reached as the stack's admin user, never as the source's (read-only) CDC user.
"""

from __future__ import annotations

from core.config import SourceConfig
from dbschemas import Progress
from dbschemas.demo_sources import demo_name, is_local_demo_source
from dbschemas.mariadb_inventory import load_inventory
from dbschemas.postgres_shop import load_shop
from infrastructure.stack.layout import StackLayout


def load_demo_schemas(
    layout: StackLayout, sources: list[SourceConfig], progress: Progress = print
) -> None:
    """Create, seed and grant the demo databases of `sources` on the local stack; idempotent.

    Raises:
        StackError: a server cannot be reached or refuses a statement.
        ConfigError: a PostgreSQL source lists tables that do not exist.
    """
    for source in sources:
        name = demo_name(source)
        if name is None:
            progress(f"demo: skipping source {source.name}: not a demo database")
            continue
        if not is_local_demo_source(layout, source):
            progress(
                f"demo: skipping source {source.name}: port {source.port} is not the local stack's"
            )
            continue
        if name == "shop":
            load_shop(layout, source, progress)
        else:
            load_inventory(layout, source, progress)
