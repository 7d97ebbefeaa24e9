"""Northwind for MySQL (schema + data) on the local MariaDB, as database `northwind`.

The dataset's scripts run unchanged through the `mariadb` client: a latin1 database with utf8
tables, LONGTEXT, LONGBLOB, DECIMAL, DATETIME and tables whose rows reference each other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dbschemas.samples import mariadbserver
from dbschemas.samples.datasets import dataset_file
from infrastructure.stack.layout import StackLayout

DATABASE = "northwind"
DIR = "northwind-mysql"
# Loaded last by the data script: present and non-empty means the load completed.
MARKER_TABLE = "order_details"


def load(layout: StackLayout, datasets: Path, progress: Callable[[str], object]) -> list[str]:
    """Create and fill `northwind` unless a previous load completed; returns its tables."""
    if mariadbserver.row_count(layout, DATABASE, MARKER_TABLE) > 0:
        progress(f"sample northwind: database {DATABASE} already loaded")
    else:
        schema = dataset_file(datasets, DIR, "northwind.sql").read_text(encoding="utf-8")
        data = dataset_file(datasets, DIR, "northwind-data.sql").read_text(encoding="utf-8")
        mariadbserver.run_script(layout, schema)  # it drops and creates schema `northwind`
        mariadbserver.run_script(layout, data, DATABASE)
        progress(f"sample northwind: loaded schema and data into {DATABASE}")
    # The MariaDB CDC user has global SELECT/replication grants from `stack up`: nothing to grant.
    return mariadbserver.tables(layout, DATABASE)
