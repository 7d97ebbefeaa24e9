"""PostgreSQL side of the samples: run a dataset script with psql, grant, publish, list tables."""

from __future__ import annotations

import os
import subprocess

import psycopg
from psycopg import sql

from connectors.heartbeat import create_statement, heartbeat_table
from core.config import SourceConfig
from core.errors import StackError
from dbschemas.loader import _pg_create_database, pg_connect
from infrastructure.stack.layout import StackLayout

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


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
        _pg_create_database(conn, database)


def run_script(layout: StackLayout, database: str, script: str) -> None:
    """Run a SQL script with psql (COPY … FROM stdin and dump syntax need psql, not a driver)."""
    admin = layout.pg_admin
    env = {**os.environ, "PGPASSWORD": admin.password(), "PGCONNECT_TIMEOUT": "10"}
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", admin.host, "-p", str(admin.port),
           "-U", admin.user, "-d", database, "-f", "-"]  # fmt: skip
    done = subprocess.run(cmd, input=script, text=True, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        raise StackError(f"psql failed: {done.stderr.strip()[-800:]}", database=database)


def user_tables(conn: psycopg.Connection) -> list[tuple[str, str, bool]]:
    """(schema, table, has_primary_key) of every table logical replication can publish.

    Partitions are left out: the publication publishes them through their root
    (`publish_via_partition_root`), so they arrive as the partitioned table.
    """
    rows = conn.execute(
        "SELECT n.nspname, c.relname, EXISTS (SELECT 1 FROM pg_constraint k "
        "  WHERE k.conrelid = c.oid AND k.contype = 'p') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_%%' ORDER BY 1, 2",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    return [(r[0], r[1], bool(r[2])) for r in rows]


def grant_and_publish(layout: StackLayout, database: str, publication: str) -> list[str]:
    """Grant the CDC user read access, give key-less tables REPLICA IDENTITY FULL, publish all.

    Also creates the heartbeat table Debezium's action query upserts (connectors/heartbeat.py): it is
    published and granted, but not returned, so it is never captured as a table.

    Returns the published tables as `schema.table`.
    """
    cdc = sql.Identifier(layout.pg_cdc.user)
    # The same defaults a source entry for this database gets (heartbeat_table included).
    beat_source = SourceConfig(
        name="sample",
        kind="postgres",
        port=layout.pg_cdc.port,
        database=database,
        user=layout.pg_cdc.user,
        password_file=layout.pg_cdc.password_file,
    )
    beat = heartbeat_table(beat_source)
    with pg_connect(layout.pg_admin, database) as conn:
        if beat is not None:
            conn.execute(create_statement(beat_source).encode())
            conn.execute(
                sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(
                    sql.Identifier(*beat), cdc
                )
            )
        tables = user_tables(conn)
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), cdc)
        )
        for schema in sorted({s for s, _, _ in tables}):
            ident = sql.Identifier(schema)
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident, cdc))
            conn.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(ident, cdc)
            )
        for schema, table, has_key in tables:
            if not has_key:
                # Without a key PostgreSQL refuses UPDATE/DELETE on a published table, and Debezium
                # gets no key; FULL logs whole before-images, and the source config names the key.
                conn.execute(
                    sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(
                        sql.Identifier(schema, table)
                    )
                )
        name = sql.Identifier(publication)
        table_list = sql.SQL(", ").join(sql.Identifier(s, t) for s, t, _ in tables)
        exists = conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,)
        ).fetchone()
        if exists:
            conn.execute(sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(name, table_list))
            conn.execute(
                sql.SQL("ALTER PUBLICATION {} SET (publish_via_partition_root = true)").format(name)
            )
        else:
            conn.execute(
                sql.SQL(
                    "CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true)"
                ).format(name, table_list)
            )
        conn.commit()
    return [f"{s}.{t}" for s, t, _ in tables if (s, t) != beat]


def keyless_tables(layout: StackLayout, database: str) -> list[str]:
    """`schema.table` of published tables without a primary key."""
    with pg_connect(layout.pg_admin, database) as conn:
        return [f"{s}.{t}" for s, t, has_key in user_tables(conn) if not has_key]


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
