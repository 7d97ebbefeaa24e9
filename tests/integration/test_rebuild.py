"""`cdchub rebuild` when Kafka no longer holds a topic's first records, on the real stack.

Each test has a source database of its own (PostgreSQL, MariaDB) with two tables, so deleting the
first records of one of its topics (Kafka's DeleteRecords, as retention would) touches no other
test. The oracles: the source rows (`cdchub verify`, and read here), and the history the hub wrote
from the whole topic before the records were deleted:

- a plain `rebuild` is refused (one line, exit 2) naming `--snapshot`;
- `rebuild --accept-history-loss --execute` rebuilds exactly the versions the retained records
  carry, and `verify` then fails: the rows whose every change was deleted are gone;
- `rebuild --snapshot --execute` (PostgreSQL source and DuckDB warehouse; MariaDB source and a
  PostgreSQL warehouse while `cdchub run` runs and another table keeps changing) ends with `verify`
  green: the same stream versions, plus ONE snapshot version for exactly the keys no retained record
  reaches (its values the source row's), and none for the keys the stream rebuilt (no fake version);
  the other table's history is untouched;
- `backfill --no-wait --timeout N` returns once the snapshot is complete, before anything applies;
  the rows then apply as no new version; `backfill --timeout` too short is one line, exit 2.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from sqlglot import exp

from connectors import signals
from connectors.service import apply_connectors
from connectors.sources import connect, read_table
from connectors.warehouses import open_session
from core.config import HubConfig, SourceConfig, load_config
from dbschemas.samples import mariadbserver, pgserver
from merge import sqltree
from merge.naming import IS_DELETED, OP, SOURCE_POS
from tests.integration.conftest import Stack
from tests.integration.helpers import (
    config_file,
    failures,
    pg_source,
    pg_warehouse,
    pg_warehouse_config_file,
    replicate_until_verified,
    verify,
    wait_for_own_ticket,
)

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "cdchub.cli"]
ITEMS = 40


@pytest.fixture
def cleanup() -> Iterator[list[list[str]]]:
    """Command lines run at teardown, pass or fail (the test's connector is deleted)."""
    commands: list[list[str]] = []
    yield commands
    for command in commands:
        subprocess.run([*CLI, *command], capture_output=True, timeout=120, check=False)


def _cdchub(config: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), *args], capture_output=True, text=True, timeout=timeout
    )


def _seed(quote: str) -> str:
    q = quote
    rows = ", ".join(f"({i}, 'item {i}', {i * 10})" for i in range(1, ITEMS + 1))
    return (
        f"CREATE TABLE {q}items{q} (id INT PRIMARY KEY, label VARCHAR(40) NOT NULL, qty INT);\n"
        f"CREATE TABLE {q}notes{q} (id INT PRIMARY KEY, body VARCHAR(80));\n"
        f"INSERT INTO {q}items{q} VALUES {rows};\n"
        f"INSERT INTO {q}notes{q} VALUES (1, 'one'), (2, 'two'), (3, 'three');\n"
    )


# Changes of the two phases. Phase 1's records are deleted from Kafka: ids 1-5 are changed only
# then (their every record is gone), ids 6-15 change again in phase 2, 16 is deleted, 41-43 new.
PHASE1 = "UPDATE items SET qty = qty + 1 WHERE id <= 10;\n"
PHASE2 = (
    "UPDATE items SET label = CONCAT(label, ' v2') WHERE id BETWEEN 6 AND 15;\n"
    "DELETE FROM items WHERE id = 16;\n"
    "INSERT INTO items VALUES (41, 'item 41', 1), (42, 'item 42', NULL), (43, 'item 43', 3);\n"
    "UPDATE notes SET body = 'two v2' WHERE id = 2;\n"
)
REACHED = set(range(6, 17)) | {41, 42, 43}  # keys a retained record changes
LOST_ONLY = (set(range(1, 6)) | set(range(17, ITEMS + 1))) - REACHED


def _pg_source(stack: Stack, name: str) -> tuple[SourceConfig, Callable[[str], None]]:
    pgserver.recreate_database(stack.layout, name)
    pgserver.run_script(stack.layout, name, _seed('"'))
    pgserver.grant_and_publish(stack.layout, name, f"cdchub_{name}")
    source = pg_source(stack, name, tables=["public.items", "public.notes"])
    # What `cdchub backfill` prints for an admin to run: the signaling table, granted, published.
    pgserver.run_script(stack.layout, name, "\n".join(signals.admin_statements(source)))
    return source, lambda script: pgserver.run_script(stack.layout, name, script)


def _mariadb_source(stack: Stack, name: str) -> tuple[SourceConfig, Callable[[str], None]]:
    mariadbserver.drop_database(stack.layout, name)
    mariadbserver.run_script(stack.layout, f"CREATE DATABASE {name};")
    mariadbserver.run_script(stack.layout, _seed("`"), database=name)
    base = {s.name: s for s in stack.config.sources}["inventory"]
    source = base.model_copy(
        update={
            "name": name,
            "database": name,
            "server_id": 184321,
            "tables": [f"{name}.items", f"{name}.notes"],
        }
    )
    # The signaling table, as an admin prepares it (the stack's CDC user exists per host, not '%').
    grants = "".join(
        f"GRANT SELECT, INSERT, DELETE ON `{name}`.`cdchub_signal` TO '{source.user}'@'{host}';\n"
        for host in ("localhost", "127.0.0.1")
    )
    mariadbserver.run_script(stack.layout, signals.create_statement(source) + ";\n" + grants, name)
    return source, lambda script: mariadbserver.run_script(stack.layout, script, database=name)


def _config_file(stack: Stack, tmp: Path, source: SourceConfig, warehouse: str) -> Path:
    """The stack's config with only `source`, on a fresh DuckDB file or the PostgreSQL warehouse."""
    name = source.name
    sources = [source.model_dump(mode="json", exclude_none=True)]
    if warehouse == "duckdb":
        duck = {
            "kind": "duckdb",
            "path": str(tmp / "warehouse.duckdb"),
        }  # not named like the source
        return config_file(stack, tmp, name, duck, sources=sources)[0]
    path, config = pg_warehouse_config_file(stack, tmp, name)
    with pg_warehouse(config) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    doc = yaml.safe_load(path.read_text())
    doc["sources"] = sources
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _versions(config: HubConfig, schema: str, table: str) -> list[tuple[Any, ...]]:
    """(id, values…, op, position, deleted) of every history version, in order."""
    session = open_session(config, read_only=True)
    try:
        columns = [
            c for c in session.table_columns(schema, table) or [] if not c.startswith("_cdc")
        ]
        rows = session.query(
            exp.select(*(sqltree.col(c) for c in [*columns, OP, SOURCE_POS, IS_DELETED])).from_(
                sqltree.table(table, schema)
            )
        )
    finally:
        session.close()
    return sorted((tuple(r) for r in rows), key=lambda v: (v[0], v[-2]))  # key, position


def _current_keys(config: HubConfig, schema: str) -> set[int]:
    session = open_session(config, read_only=True)
    try:
        rows = session.query(exp.select(sqltree.col("id")).from_(sqltree.table("items", schema)))
    finally:
        session.close()
    return {int(r[0]) for r in rows}


def _source_items(source: SourceConfig) -> dict[int, tuple[Any, ...]]:
    namespace = "public" if source.kind == "postgres" else source.database
    with connect(source) as conn:
        _columns, rows = read_table(conn, source, namespace, "items")
    return {int(r[0]): tuple(r) for r in rows}


def _topic_end(config: HubConfig, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=config.kafka.bootstrap_servers)
    try:
        partitions = consumer.partitions_for_topic(topic)
        assert partitions == {0}, partitions  # one partition: offsets order the changes
        return int(consumer.end_offsets([TopicPartition(topic, 0)])[TopicPartition(topic, 0)])
    finally:
        consumer.close()


def _delete_records(config: HubConfig, topic: str, before: int) -> None:
    """Kafka's DeleteRecords: the partition now starts at `before`, as after retention."""
    admin = KafkaAdminClient(bootstrap_servers=config.kafka.bootstrap_servers)
    try:
        admin.delete_records({TopicPartition(topic, 0): before}, timeout_ms=30000)
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=config.kafka.bootstrap_servers)
    try:
        tp = TopicPartition(topic, 0)
        assert consumer.beginning_offsets([tp])[tp] == before
    finally:
        consumer.close()


def _prepare(
    path: Path, source: SourceConfig, run_sql: Callable[[str], None]
) -> tuple[HubConfig, list[tuple[Any, ...]], str]:
    """Replicate both phases, then delete phase 1's records (and the initial snapshot's) from
    the items topic. Returns the config, the items history written from the whole topic, and the
    last position phase 1 wrote."""
    config = load_config(path)
    apply_connectors(config, progress=lambda _m: None)
    run_sql(PHASE1)
    assert replicate_until_verified(config)["ok"]
    schema = source.name
    phase1 = _versions(config, schema, "items_history")
    boundary = max(v[-2] for v in phase1)
    namespace = "public" if source.kind == "postgres" else source.database
    topic = f"{source.name}.{namespace}.items"
    end1 = _topic_end(config, topic)
    run_sql(PHASE2)
    report = replicate_until_verified(config)
    assert report["ok"], failures(report)
    whole = _versions(config, schema, "items_history")
    assert len(whole) > len(phase1)
    _delete_records(config, topic, end1)
    return config, whole, boundary


def _retained(whole: list[tuple[Any, ...]], boundary: str, kind: str) -> list[tuple[Any, ...]]:
    """The versions the retained records carry: those after `boundary`. A delete whose previous
    version is gone carries the values its record holds: on PostgreSQL (replica identity DEFAULT)
    only the key, so the rebuilt delete has no values; MariaDB's binlog has the whole row."""
    out = []
    for v in whole:
        if v[-2] <= boundary:
            continue
        first = not any(o[0] == v[0] for o in out)
        if v[-1] and first and kind == "postgres":
            v = (v[0], *(None for _ in v[1:-3]), *v[-3:])
        out.append(v)
    return out


def _check_snapshot_rebuild(
    config: HubConfig,
    source: SourceConfig,
    whole: list[tuple[Any, ...]],
    boundary: str,
    report: dict[str, Any],
) -> None:
    """The rebuilt history: the retained stream's versions exactly, plus one snapshot version for
    each key no retained record reaches, equal to the source row; nothing else."""
    rebuilt = _versions(config, source.name, "items_history")
    stream = _retained(whole, boundary, source.kind)
    assert {v[0] for v in stream} == REACHED
    snapshot_pos = report["history"]
    kept = [v for v in rebuilt if v[-3] != "r" or v[0] in REACHED]
    added = [v for v in rebuilt if v[-3] == "r" and v[0] not in REACHED]
    assert kept == stream  # no fake version: no snapshot row written for a key the stream rebuilt
    rows = _source_items(source)
    assert set(rows) == (set(range(1, ITEMS + 1)) - {16}) | {41, 42, 43}
    assert {v[0] for v in added} == LOST_ONLY and len(added) == len(LOST_ONLY)
    assert all(v[: len(rows[v[0]])] == rows[v[0]] and not v[-1] for v in added)
    assert all(v[-2] > boundary for v in added)  # at the snapshot, after every retained change
    assert snapshot_pos["snapshot_versions"] == len(LOST_ONLY)
    assert snapshot_pos["snapshot_rows_unchanged"] == len(rows) - len(LOST_ONLY)
    assert report["snapshot"]["completed"] and report["snapshot"]["rows_read"] == len(rows)
    assert snapshot_pos["versions_after"] == len(rebuilt)


def test_rebuild_from_a_fresh_snapshot_postgres_source(
    stack: Stack, tmp_path: Path, cleanup: list[list[str]]
) -> None:
    source, run_sql = _pg_source(stack, "rbpg")
    path = _config_file(stack, tmp_path, source, "duckdb")
    cleanup.append(["--config", str(path), "connectors", "delete", "--drop-slot"])
    config, whole, boundary = _prepare(path, source, run_sql)
    notes_before = _versions(config, "rbpg", "notes_history")

    # Plain: refused, one line naming what to do.
    refused = _cdchub(path, "rebuild", "--table", "rbpg.items", "--execute")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().count("\n") == 0 and "--snapshot" in refused.stderr
    assert _versions(config, "rbpg", "items_history") == whole

    # --accept-history-loss: exactly the retained records' versions; verify now fails.
    lossy = _cdchub(
        path, "rebuild", "--table", "rbpg.items", "--accept-history-loss", "--execute", "--json"
    )
    assert lossy.returncode == 0, lossy.stderr[-2000:]
    doc = json.loads(lossy.stdout)
    assert "no longer holds the first records" in doc["warning"]
    assert doc["history"]["versions_before"] == len(whole)
    assert _versions(config, "rbpg", "items_history") == _retained(whole, boundary, "postgres")
    report = verify(config)
    assert [t["warehouse_table"] for t in failures(report)] == ["rbpg.items"], failures(report)
    # What the retained records reach is there; the rows whose every change was deleted are not.
    assert _current_keys(config, "rbpg") == REACHED - {16}

    # The plan of --snapshot says what it will do, and does nothing.
    plan = _cdchub(path, "rebuild", "--table", "rbpg.items", "--snapshot")
    assert plan.returncode == 0, plan.stderr
    assert "incremental snapshot" in plan.stdout and "add --execute" in plan.stdout

    started = time.monotonic()
    done = _cdchub(path, "rebuild", "--table", "rbpg.items", "--snapshot", "--execute", "--json")
    print(f"rebuild --snapshot --execute: {time.monotonic() - started:.1f}s")
    assert done.returncode == 0, done.stderr[-2000:]
    rebuilt = json.loads(done.stdout)
    _check_snapshot_rebuild(config, source, whole, boundary, rebuilt)
    assert _versions(config, "rbpg", "notes_history") == notes_before  # untouched
    green = _cdchub(path, "verify", "--json")
    assert green.returncode == 0, green.stdout[-2000:]
    # Progress: the snapshot's bar, then the rebuild's, each ending on its count.
    lines = done.stderr.splitlines()
    assert (
        f"snapshot rbpg.items: {len(_source_items(source))}/{len(_source_items(source))}" in lines
    )
    assert any(line.startswith("rebuild rbpg.items: ") for line in lines)

    # Again, in text: the topic now holds both snapshots; the second writes nothing, and the
    # summary says what could and could not be rebuilt.
    first = _versions(config, "rbpg", "items_history")
    text = _cdchub(path, "rebuild", "--table", "rbpg.items", "--snapshot", "--execute")
    assert text.returncode == 0, text.stderr[-2000:]
    print(text.stdout)
    assert "not reconstructed" in text.stdout and "; 0 written as versions" in text.stdout
    assert _versions(config, "rbpg", "items_history") == first

    # backfill --no-wait --timeout: returns once Debezium's snapshot is complete, nothing applied.
    before = _versions(config, "rbpg", "items_history")
    nowait = _cdchub(
        path, "backfill", "--table", "rbpg.items", "--no-wait", "--timeout", "300", "--json"
    )
    assert nowait.returncode == 0, nowait.stderr[-2000:]
    result = json.loads(nowait.stdout)
    assert result["completed"] and result["applied"] is None and result["repaired_drift"] is None
    assert result["rows_read"] == len(_source_items(source))
    drained = _cdchub(path, "run", "--until-idle", "4", "--json")
    assert drained.returncode == 0, drained.stderr[-2000:]
    assert _versions(config, "rbpg", "items_history") == before  # equal rows: no version

    # Too short a --timeout: one line, exit 2, the snapshot named as possibly still running.
    late = _cdchub(path, "backfill", "--table", "rbpg.notes", "--timeout", "0.01")
    assert late.returncode == 2, late.stderr
    lines = late.stderr.strip().splitlines()  # progress lines, then ONE error line
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], late.stderr
    assert "did not complete in time" in lines[-1] and "Traceback" not in late.stderr


def test_rebuild_from_a_fresh_snapshot_mariadb_source_while_run_runs(
    stack: Stack, tmp_path: Path, cleanup: list[list[str]]
) -> None:
    source, run_sql = _mariadb_source(stack, "rbmy")
    path = _config_file(stack, tmp_path, source, "postgres")
    cleanup.append(["--config", str(path), "connectors", "delete"])
    config, whole, boundary = _prepare(path, source, run_sql)
    run = subprocess.Popen(
        [*CLI, "--config", str(path), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stop = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:  # the other table keeps changing while the rebuild runs
        n = 100
        while not stop.is_set():
            run_sql(f"INSERT INTO notes VALUES ({n}, 'note {n}');")
            written.append(n)
            n += 1
            stop.wait(0.5)

    writer = threading.Thread(target=keep_writing)
    try:
        wait_for_own_ticket(
            run,
            config,
            60,
            lambda: run.stderr.read() if run.stderr and run.poll() is not None else "",
        )
        writer.start()
        done = _cdchub(
            path, "rebuild", "--table", "rbmy.items", "--snapshot", "--timeout", "300", "--execute",
            "--json",
        )  # fmt: skip
        stop.set()
        writer.join()
        assert run.poll() is None, "the run stopped during the rebuild"
        assert done.returncode == 0, done.stderr[-2000:]
        assert "running `cdchub run`" in done.stderr  # the run applied it: one writer
        assert written, "no change was made to the other table meanwhile"
        deadline = time.monotonic() + 120
        while not (report := verify(config))["ok"] and time.monotonic() < deadline:
            time.sleep(2)  # the run applies the notes written meanwhile
    finally:
        stop.set()
        if writer.is_alive():
            writer.join()
        run.send_signal(signal.SIGTERM)
        _out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err[-2000:]
    assert report["ok"], failures(report)
    _check_snapshot_rebuild(config, source, whole, boundary, json.loads(done.stdout))
