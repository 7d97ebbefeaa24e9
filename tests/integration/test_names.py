"""Issue 10 on the real stack: names no two source tables share, names every warehouse can hold,
configured tables that do not exist, `kind: mysql` against MariaDB, and a benchmark that leaves no
trace. The source database is the oracle (`cdchub verify`, `cdchub asof`); nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import psycopg
import pytest
import yaml
from click.testing import CliRunner
from sqlglot import exp

from cdchub.bench import SCRATCH_PREFIX, bench_merge
from cdchub.cli import cli
from connectors.connect_client import ConnectClient
from connectors.debezium import connector_config, connector_name
from connectors.service import apply_connectors
from connectors.sources import connect, read_table
from connectors.warehouses import dialect_for, open_session
from connectors.warehouses.postgres.client import PostgresSession
from core.config import HubConfig, SourceConfig
from core.errors import ConnectorError
from dbschemas.demo_sources import pg_connect
from dbschemas.samples import mariadbserver, pgserver
from merge import client_sql, control, ddl, sqltree
from merge.ledger import Checkpoint
from merge.naming import CONTROL_SCHEMA
from merge.scd2 import Scd2Engine
from ops.catalog import replicated_tables
from tests.integration.conftest import Stack
from tests.integration.helpers import failures, pg_source, replicate_until_verified, with_warehouse

pytestmark = pytest.mark.integration

# 63 characters, the most a PostgreSQL source table name can have: on a PostgreSQL warehouse
# `<it>_history` (71 bytes) would be cut back to `<it>`, the current table itself.
LONG = "a_source_table_name_of_sixty_three_characters_that_pg_cuts_shor"
TABLES = ["s.t", "public.s__t", "public.Orders", "public.orders", "public.x", "public.x_history",
          f"public.{LONG}"]  # fmt: skip
DB = "namespg"


def _quoted(table: str) -> str:
    return ".".join(f'"{part}"' for part in table.split(".", 1))


def _script() -> str:
    lines = ["CREATE SCHEMA s;"]
    for table in TABLES:
        lines.append(f"CREATE TABLE {_quoted(table)} (id int PRIMARY KEY, v text NOT NULL);")
        lines.append(f"INSERT INTO {_quoted(table)} VALUES (1, '{table} one'), (2, '{table} two');")
    return "\n".join(lines)


def _source(stack: Stack, **update: object) -> SourceConfig:
    return pg_source(stack, DB, **update)


@pytest.fixture(scope="module")
def names_source(stack: Stack) -> tuple[SourceConfig, list[str]]:
    """A PostgreSQL source whose tables clash in the warehouse, registered; the preflight's notes."""
    pgserver.recreate_database(stack.layout, DB)
    pgserver.run_script(stack.layout, DB, _script())
    pgserver.grant_and_publish(stack.layout, DB, f"cdchub_{DB}")
    source = _source(stack)
    notes: list[str] = []
    # The stack's config has a DuckDB warehouse: the notes are DuckDB's (case-insensitive) ones.
    apply_connectors(stack.config.model_copy(update={"sources": [source]}), progress=notes.append)
    return source, notes


def _config(stack: Stack, source: SourceConfig, kind: str, tmp_path: Path) -> HubConfig:
    config = with_warehouse(stack.config, tmp_path / "names.duckdb", f"it-names-{kind}")
    if kind == "postgres":
        config = config.model_copy(update={"warehouse": stack.layout.pg_warehouse_config()})
        session = PostgresSession(config.warehouse)  # type: ignore[arg-type]
        try:
            for schema in (DB, CONTROL_SCHEMA):
                session.execute(client_sql.drop_schema(schema))
        finally:
            session.close()
    return config.model_copy(update={"sources": [source]})


def _config_file(config: HubConfig, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    return path


def _cli(config_file: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config_file), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_preflight_notes_name_both_clashing_source_tables(
    names_source: tuple[SourceConfig, list[str]],
) -> None:
    _, notes = names_source
    text = "\n".join(notes)
    assert "namespg.public.s__t and namespg.s.t" in text, notes
    assert "namespg.public.Orders and namespg.public.orders" in text, notes
    assert "namespg.public.x and namespg.public.x_history" in text, notes


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_clashing_and_long_names_replicate_into_distinct_tables(
    stack: Stack, names_source: tuple[SourceConfig, list[str]], kind: str, tmp_path: Path
) -> None:
    source, _ = names_source
    config = _config(stack, source, kind, tmp_path)
    report = replicate_until_verified(config)
    assert report["ok"], failures(report)
    assert {t["table"] for t in report["tables"]} == set(TABLES)

    # Streamed changes reach each table's own warehouse table.
    updates = "".join(
        f"UPDATE {_quoted(t)} SET v = '{t} changed' WHERE id = 1; DELETE FROM {_quoted(t)} "
        "WHERE id = 2;"
        for t in TABLES
    )
    pgserver.run_script(stack.layout, DB, updates)
    report = replicate_until_verified(config)
    assert report["ok"], failures(report)

    session = open_session(config, read_only=True)
    try:
        found = replicated_tables(session)
        fold = dialect_for(kind).fold  # PostgreSQL keeps "Orders" and orders apart; DuckDB does not
        names = [fold(n) for t in found for n in (t.current_table, t.history_table)]
        assert len(set(names)) == 2 * len(TABLES), names
        long = next(t for t in found if t.source_table == LONG)
        if kind == "postgres":
            assert long.current_table != LONG and len(long.history_table.encode()) <= 63
            assert long.history_table == long.current_table + "_history"
            values = session.query(
                exp.select(sqltree.col("v"), sqltree.col("_cdc_op")).from_(
                    sqltree.table(long.history_table, long.warehouse_schema)
                )
            )
            # Its history holds its own versions (a cut name made it the current table itself).
            assert values and all(v.startswith(f"public.{LONG} ") for v, _ in values), values
        else:
            assert long.current_table == LONG  # DuckDB has no identifier limit
    finally:
        session.close()

    # What users run reads the recorded names: tables, verify with drift and range checksums, asof.
    config_file = _config_file(config, tmp_path / "cdchub.yaml")
    listed = json.loads(_cli(config_file, "tables", "--json").splitlines()[-1])
    assert {f"{t['source_schema']}.{t['source_table']}" for t in listed} == set(TABLES)
    verified = json.loads(_cli(config_file, "verify", "--json", "--ranges", "2").splitlines()[-1])
    assert verified["ok"] and all(d["ok"] for d in verified["schema_drift"]), verified
    now = dt.datetime.now(dt.UTC).isoformat()
    with connect(source) as conn:
        for table in TABLES:
            namespace, name = table.split(".", 1)
            _, rows = read_table(conn, source, namespace, name)
            written = tmp_path / "asof.json"
            _cli(
                config_file,
                "asof",
                f"{DB}.{table}",
                "--at",
                now,
                "--json",
                "--output",
                str(written),
            )
            got = json.loads(written.read_text())
            assert [(r["id"], r["v"]) for r in got] == sorted(rows), table


@pytest.mark.parametrize("kind", ["postgres", "mariadb"])
def test_a_configured_table_that_does_not_exist_is_refused_before_anything_is_created(
    stack: Stack, kind: str
) -> None:
    sources = {s.name: s for s in stack.config.sources}
    if kind == "postgres":
        source = sources["shop"].model_copy(
            update={"name": "nosuch", "tables": ["public.customers", "public.nosuchtable"]}
        )
        missing = "public.nosuchtable"
    else:
        source = sources["inventory"].model_copy(
            update={"name": "nosuchmy", "tables": ["inventory.nosuchtable"], "server_id": 184999}
        )
        missing = "inventory.nosuchtable"
    config = stack.config.model_copy(update={"sources": [source]})
    with pytest.raises(ConnectorError, match=missing.replace(".", r"\.")):
        apply_connectors(config, progress=lambda _m: None)
    client = ConnectClient(config.connect.url)
    try:
        assert client.status(connector_name(source)) is None
    finally:
        client.close()
    if kind == "postgres":
        with pg_connect(stack.layout.pg_admin, "postgres") as conn:
            slots = conn.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (source.slot,)
            ).fetchall()
        assert slots == []


def test_kind_mysql_captures_mariadb(stack: Stack, tmp_path: Path) -> None:
    """The MySQL connector (not the MariaDB one) replicates the stack's MariaDB 10.11, snapshot
    and stream, exactly."""
    mariadbserver.drop_database(stack.layout, "mysqlkind")
    mariadbserver.run_script(
        stack.layout,
        "CREATE DATABASE mysqlkind; USE mysqlkind; "
        "CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(40) NOT NULL, price DECIMAL(10,2)); "
        "INSERT INTO items VALUES (1, 'one', 1.50), (2, 'two', NULL), (3, 'three', 3.25);",
    )
    base = {s.name: s for s in stack.config.sources}["inventory"]
    source = base.model_copy(
        update={"name": "mysqlkind", "kind": "mysql", "database": "mysqlkind", "server_id": 184555}
    )
    config = with_warehouse(stack.config, tmp_path / "mysql.duckdb", "it-mysqlkind")
    config = config.model_copy(update={"sources": [source]})
    generated = connector_config(source, config)
    client = ConnectClient(config.connect.url)
    try:
        klass = generated["connector.class"]
        assert not [e for e in client.validate(klass, generated) if "ssl" in e]
        # The MariaDB connector's spelling, which cdchub generated for `kind: mysql` before.
        old = {**generated, "database.ssl.mode": "disable"}
        assert any("database.ssl.mode" in e for e in client.validate(klass, old))
    finally:
        client.close()
    apply_connectors(config, progress=lambda _m: None)
    report = replicate_until_verified(config)
    assert report["ok"], failures(report)
    mariadbserver.run_script(
        stack.layout,
        "USE mysqlkind; UPDATE items SET label = 'uno', price = 9.99 WHERE id = 1; "
        "DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (4, 'four', 0.01);",
    )
    report = replicate_until_verified(config)
    assert report["ok"], failures(report)
    assert [t["source_rows"] for t in report["tables"]] == [3]
    session = open_session(config, read_only=True)
    try:
        ops = session.query(
            exp.select(sqltree.col("_cdc_op"))
            .from_(sqltree.table("items_history", "mysqlkind"))
            .order_by(sqltree.col("_cdc_source_pos"))
        )
    finally:
        session.close()
    assert sorted(op for (op,) in ops) == ["c", "d", "r", "r", "r", "u"]


def test_bench_merge_on_postgres_leaves_no_trace_and_spares_user_schemas(stack: Stack) -> None:
    warehouse = stack.layout.pg_warehouse_config()
    config = stack.config.model_copy(update={"warehouse": warehouse})
    session = PostgresSession(warehouse)
    try:
        # A user's schema named like the old benchmark's, with a table in it.
        session.execute(client_sql.drop_schema("bench"))
        with session.transaction():
            session.execute(ddl.create_schema("bench"))
        with psycopg.connect(
            host=warehouse.host, port=warehouse.port, dbname=warehouse.database,
            user=warehouse.user, password=warehouse.secret(), autocommit=True,
        ) as conn:  # fmt: skip
            conn.execute("CREATE TABLE bench.items (id int PRIMARY KEY, note text)")
            conn.execute("INSERT INTO bench.items VALUES (1, 'mine')")
        # Control rows of a real consumer, which the benchmark must not touch.
        engine = Scd2Engine(session, "a-real-consumer")
        with session.transaction():
            engine.ensure_control()
            engine.ledger.store_checkpoints([Checkpoint("shop.public.orders", 0, 42)])

        def control_rows() -> dict[str, int]:
            rows = {}
            for name in (control.TABLES, control.OFFSETS, control.BATCHES, control.BATCH_OFFSETS,
                         control.SCHEMAS, control.COLUMNS):  # fmt: skip
                if session.table_columns(CONTROL_SCHEMA, name) is not None:
                    rows[name] = int(
                        session.query(
                            exp.select(exp.Count(this=exp.Star())).from_(
                                control.control_table(name)
                            )
                        )[0][0]
                    )
            return rows

        def schemas() -> set[str]:
            rows = session.query(
                exp.select(sqltree.col("schema_name")).from_(
                    exp.table_("schemata", db="information_schema")
                )
            )
            return {r[0] for r in rows}

        before_rows, before_schemas = control_rows(), schemas()
        result = bench_merge(config, "postgres", events=400, batch=100, keys=50)
        assert result.events == 400 and result.versions > 0
        assert control_rows() == before_rows
        assert schemas() == before_schemas
        assert not any(s.startswith(SCRATCH_PREFIX) for s in schemas())
        kept = session.query(exp.select(sqltree.col("note")).from_(sqltree.table("items", "bench")))
        assert kept == [("mine",)]
    finally:
        session.execute(client_sql.drop_schema("bench"))
        session.close()
