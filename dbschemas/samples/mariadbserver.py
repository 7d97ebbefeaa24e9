"""MariaDB side of the samples: run a dataset script with the mariadb client, list tables."""

from __future__ import annotations

import os
import subprocess

from core.errors import StackError
from dbschemas.demo_sources import mariadb_connect, mysql_ident
from infrastructure.stack.layout import StackLayout


def run_script(layout: StackLayout, script: str, database: str | None = None) -> None:
    """Run a SQL script with the `mariadb` client (it understands DELIMITER, `#` comments, USE)."""
    admin = layout.mariadb_admin
    env = {**os.environ, "MYSQL_PWD": admin.password()}
    cmd = ["mariadb", "--protocol=TCP", "-h", admin.host, "-P", str(admin.port), "-u", admin.user,
           "--default-character-set=utf8mb4", "--batch"]  # fmt: skip
    if database:
        cmd.append(database)
    done = subprocess.run(cmd, input=script, text=True, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        raise StackError(f"mariadb client failed: {done.stderr.strip()[-800:]}", database=database)


def tables(layout: StackLayout, database: str) -> list[str]:
    """`database.table` of every base table."""
    conn = mariadb_connect(layout.mariadb_admin, None)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY 1",
                (database,),
            )
            return [f"{database}.{r[0]}" for r in cur.fetchall()]
    finally:
        conn.close()


def row_count(layout: StackLayout, database: str, table: str) -> int:
    """Rows in one table (0 when the database or table does not exist)."""
    if f"{database}.{table}" not in tables(layout, database):
        return 0
    conn = mariadb_connect(layout.mariadb_admin, database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {mysql_ident(table)}")
            return int(cur.fetchone()[0])  # type: ignore[index]
    finally:
        conn.close()


def drop_database(layout: StackLayout, database: str) -> None:
    """DROP DATABASE IF EXISTS, so a half-loaded sample starts clean."""
    run_script(layout, f"DROP DATABASE IF EXISTS {mysql_ident(database)};")
