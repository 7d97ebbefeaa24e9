"""The demo business behind `cdchub demo`: an online shop (PostgreSQL) and its inventory (MariaDB).

`loader.load_demo_schemas` creates and seeds the databases (`postgres_shop`, `mariadb_inventory`);
`dbschemas.workload` then changes them.
"""

from collections.abc import Callable

# What the demo tooling reports progress to (`print` by default): one line per call.
Progress = Callable[[str], object]
