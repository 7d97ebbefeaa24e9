"""PostgreSQL side of the samples: run a dataset script with psql, grant, publish, list tables."""

from __future__ import annotations

import os
import subprocess

from psycopg import sql

from connectors import postgres_admin
from core.config import SourceConfig
from core.errors import StackError
from dbschemas.demo_sources import pg_connect
from infrastructure.stack.layout import StackLayout


def database_exists(layout: StackLayout, database: str) -> bool:
    """True when `database` exists on the local PostgreSQL."""
    with pg_connect(layout.pg_admin, "postgres", autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        return row is not None


def recreate_database(layout: StackLayout, database: str) -> None:
    """Drop (when present) and create `database`, so a half-loaded sample starts clean."""
    with pg_connect(layout.pg_admin, "postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        postgres_admin.create_database(conn, database)


def run_script(layout: StackLayout, database: str, script: str) -> None:
    """Run a SQL script with psql (COPY … FROM stdin and dump syntax need psql, not a driver)."""
    admin = layout.pg_admin
    env = {**os.environ, "PGPASSWORD": admin.password(), "PGCONNECT_TIMEOUT": "10"}
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", admin.host, "-p", str(admin.port),
           "-U", admin.user, "-d", database, "-f", "-"]  # fmt: skip
    done = subprocess.run(cmd, input=script, text=True, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        raise StackError(f"psql failed: {done.stderr.strip()[-800:]}", database=database)


def grant_and_publish(layout: StackLayout, database: str, publication: str) -> list[str]:
    """Grant the CDC user read access, give key-less tables REPLICA IDENTITY FULL, publish all.

    Also creates the heartbeat table Debezium's action query upserts (connectors/heartbeat.py): it is
    published and granted, but not returned, so it is never captured as a table.

    Returns the published tables as `schema.table`.
    """
    cdc_user = layout.pg_cdc.user
    # The same defaults a source entry for this database gets (heartbeat_table included).
    beat_source = SourceConfig(
        name="sample",
        kind="postgres",
        port=layout.pg_cdc.port,
        database=database,
        user=cdc_user,
        password_file=layout.pg_cdc.password_file,
    )
    with pg_connect(layout.pg_admin, database) as conn:
        beat = postgres_admin.create_heartbeat_table(conn, beat_source, cdc_user)
        tables = postgres_admin.publishable_tables(conn)
        postgres_admin.grant_read(conn, database, cdc_user, (s for s, _, _ in tables))
        for schema, table, has_key in tables:
            if not has_key:
                # Without a key PostgreSQL refuses UPDATE/DELETE on a published table, and Debezium
                # gets no key; FULL logs whole before-images, and the source config names the key.
                conn.execute(
                    sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(
                        sql.Identifier(schema, table)
                    )
                )
        postgres_admin.publish(conn, publication, [(s, t) for s, t, _ in tables])
        conn.commit()
    return [f"{s}.{t}" for s, t, _ in tables if (s, t) != beat]


def keyless_tables(layout: StackLayout, database: str) -> list[str]:
    """`schema.table` of published tables without a primary key."""
    with pg_connect(layout.pg_admin, database) as conn:
        return [
            f"{s}.{t}" for s, t, has_key in postgres_admin.publishable_tables(conn) if not has_key
        ]


def row_count(layout: StackLayout, database: str, table: str) -> int:
    """Rows in one table (0 when it does not exist)."""
    schema, name = table.split(".", 1)
    with pg_connect(layout.pg_admin, database) as conn:
        if conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{name}"',)).fetchone()[0] is None:  # type: ignore[index]
            return 0
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
        return int(conn.execute(query).fetchone()[0])  # type: ignore[index]


def generated_columns(layout: StackLayout, database: str) -> list[str]:
    """`schema.table.column` of generated columns: PostgreSQL < 18 does not publish them, and
    Debezium fills them with the column's default instead, so a source excludes them."""
    with pg_connect(layout.pg_admin, database) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE a.attgenerated <> '' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "ORDER BY 1, 2, 3"
        ).fetchall()
    return [f"{r[0]}.{r[1]}.{r[2]}" for r in rows]
