"""Sakila for PostgreSQL (schema + data) on the local PostgreSQL, as database `sakila`.

Its `payment` table is partitioned the old way: six child tables INHERIT it, and rules route inserts
to them. The children have no primary key, so the loader gives them REPLICA IDENTITY FULL and the
source config must name their key (`key_columns`, printed by `cdchub stack load-sample`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from dbschemas.samples import pgserver
from dbschemas.samples.datasets import dataset_file
from infrastructure.stack.layout import StackLayout

DATABASE = "sakila"
DIR = "sakila-pg"
PUBLICATION = "cdchub_sakila_pg"
MARKER_TABLE = "public.payment"


def adapt(script: str) -> str:
    """Drop statements a fresh PostgreSQL 15 database refuses (ownership by a role we do not have,
    the pre-9 `CREATE PROCEDURAL LANGUAGE`)."""
    script = re.sub(r"^ALTER [A-Z ]+ .* OWNER TO postgres;\n", "", script, flags=re.MULTILINE)
    script = re.sub(r"^(GRANT|REVOKE) .* (TO|FROM) (postgres|PUBLIC);\n", "", script,
                    flags=re.MULTILINE)  # fmt: skip
    return re.sub(r"^(CREATE OR REPLACE|ALTER) PROCEDURAL LANGUAGE plpgsql.*;\n", "", script,
                  flags=re.MULTILINE)  # fmt: skip


def load(layout: StackLayout, datasets: Path, progress: Callable[[str], object]) -> list[str]:
    """Create and fill `sakila` unless a previous load completed; returns the published tables."""
    if pgserver.database_exists(layout, DATABASE) and pgserver.row_count(
        layout, DATABASE, MARKER_TABLE
    ):
        progress(f"sample sakila-pg: database {DATABASE} already loaded")
    else:
        schema = dataset_file(datasets, DIR, "postgres-sakila-schema.sql").read_text()
        data = dataset_file(datasets, DIR, "postgres-sakila-insert-data-using-copy.sql").read_text()
        pgserver.recreate_database(layout, DATABASE)
        pgserver.run_script(layout, DATABASE, adapt(schema))
        pgserver.run_script(layout, DATABASE, adapt(data))
        progress(f"sample sakila-pg: loaded schema and data into {DATABASE}")
    return pgserver.grant_and_publish(layout, DATABASE, PUBLICATION)
