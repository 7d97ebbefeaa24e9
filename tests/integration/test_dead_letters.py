"""A poisoned event on the real stack: dead-lettered, its table halted, the others flowing; after the
fix, `cdchub dlq retry` (run as a user runs it) lands it in its place in history and `verify` is green.
With `dead_letters.topic` set, `cdchub run` also copies the letter to that Kafka topic: the record's
bytes as Debezium wrote them (read back independently at its offset) with the error context in headers,
once (a retry does not copy it again).

The poison is a change the warehouse refuses: a CHECK constraint a DBA added to the warehouse's
`shop.orders_history` (refusing one value of `notes`, which no existing row holds). The source commits an order update with that
`notes` value together with a customer update, then more changes to both tables.

On a PostgreSQL warehouse the same happens while `cdchub run` keeps running: `dlq list` and
`dlq retry` run beside it (PostgreSQL admits other sessions; the run picks the decision up).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from dbschemas.demo_sources import pg_connect
from tests.integration.conftest import Stack
from tests.integration.helpers import (
    duckdb_config_file,
    failures,
    pg_warehouse,
    pg_warehouse_config_file,
    replicate_until_verified,
    run_until_idle,
    verify,
)

CLI = [sys.executable, "-m", "cdchub.cli"]


def _rebuild_history(path: Path, check: str | None) -> None:
    conn = duckdb.connect(str(path))
    try:
        ddl = conn.execute(
            "SELECT sql FROM duckdb_tables() WHERE schema_name = 'shop' "
            "AND table_name = 'orders_history'"
        ).fetchone()[0]
        ddl = re.sub(r",\s*CHECK\(.*\)\s*\);?\s*$", ");", ddl.strip())
        if check is not None:
            ddl = ddl.rstrip(";").rstrip()[:-1] + f", CHECK ({check}));"
        conn.execute("CREATE TABLE shop.keep AS SELECT * FROM shop.orders_history")
        conn.execute("DROP TABLE shop.orders_history")
        conn.execute(ddl)
        conn.execute("INSERT INTO shop.orders_history SELECT * FROM shop.keep")
        conn.execute("DROP TABLE shop.keep")
    finally:
        conn.close()


def _poison_one_order(stack: Stack) -> tuple[int, str | None]:
    """Commit `notes = 'poison'` on one order (with a customer update), then a later change to both."""
    with pg_connect(stack.layout.pg_admin, "shop") as conn:
        order_id, notes = conn.execute(
            "SELECT order_id, notes FROM public.orders ORDER BY order_id LIMIT 1"
        ).fetchone()
        customer_id = conn.execute("SELECT min(customer_id) FROM public.customers").fetchone()[0]
        conn.execute("UPDATE public.orders SET notes = 'poison' WHERE order_id = %s", [order_id])
        conn.execute(
            "UPDATE public.customers SET loyalty_points = loyalty_points + 7 WHERE customer_id = %s",
            [customer_id],
        )
        conn.commit()
        conn.execute(
            "UPDATE public.orders SET notes = 'after the poison' WHERE order_id = %s", [order_id]
        )
        conn.execute(
            "UPDATE public.customers SET loyalty_points = loyalty_points + 1 WHERE customer_id = %s",
            [customer_id],
        )
        conn.commit()
    return order_id, notes


def _topic_records(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record of `topic`, read from the beginning to its end offsets (no consumer group)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out: list[ConsumerRecord] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for records in consumer.poll(timeout_ms=1000).values():
                out.extend(records)
    finally:
        consumer.close()
    return out


def test_poisoned_event_is_dead_lettered_copied_to_its_topic_and_a_retry_lands_it(
    stack: Stack, tmp_path: Path
) -> None:
    topic = f"it-dead-letters-{uuid.uuid4().hex[:8]}"
    # The stack's state_dir: `cdchub status` reads the local stack's processes from there.
    path, config = duckdb_config_file(
        stack,
        tmp_path,
        "dlq",
        dead_letters={"topic": topic},
        state_dir=str(stack.config.state_dir),
    )
    assert replicate_until_verified(config)["ok"]

    _rebuild_history(config.warehouse.path, "notes IS NULL OR notes <> 'poison'")
    order_id, notes = _poison_one_order(stack)
    ran = subprocess.run(
        [*CLI, "--config", str(path), "run", "--until-idle", "4", "--max-seconds", "300"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]

    listed = subprocess.run(
        [*CLI, "--config", str(path), "dlq", "list", "--json"], capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    [letter] = json.loads(listed.stdout)
    assert letter["table"] == "public.orders" and letter["status"] == "open"
    assert letter["error_kind"] == "apply" and "CHECK" in letter["error"]
    assert letter["copy_topic"] == topic and letter["copied_at"] is not None
    # The copy on the topic: the record as Debezium wrote it, the error context in headers.
    bootstrap = config.kafka.bootstrap_servers
    [copy] = _topic_records(bootstrap, topic)
    headers = {k: v.decode() for k, v in copy.headers}
    assert headers["__cdchub.errors.topic"] == letter["topic"] == "shop.public.orders"
    assert headers["__cdchub.errors.partition"] == str(letter["partition"])
    assert headers["__cdchub.errors.offset"] == str(letter["offset"])
    assert headers["__cdchub.errors.table"] == "shop.public.orders"
    assert headers["__cdchub.errors.stage"] == "apply"
    assert headers["__cdchub.errors.exception.message"] == letter["error"]
    assert headers["__cdchub.errors.source.position"] == letter["position"] != ""
    assert headers["__cdchub.errors.letter.id"] == letter["id"]
    assert str(order_id) in headers["__cdchub.errors.event.key"]
    [original] = [
        r
        for r in _topic_records(bootstrap, letter["topic"])
        if r.partition == letter["partition"] and r.offset == letter["offset"]
    ]
    assert (copy.key, copy.value) == (original.key, original.value)
    assert b"poison" in copy.value and copy.timestamp == original.timestamp

    shown = subprocess.run(
        [*CLI, "--config", str(path), "status", "--json"], capture_output=True, text=True
    )
    assert shown.returncode == 1, shown.stderr  # a person is needed
    assert json.loads(shown.stdout)["dead_letters_to_copy"] == {}  # copied already
    states = {t["table"]: t["state"] for t in json.loads(shown.stdout)["tables"]}
    assert states["shop.public.orders"] == "dead-lettered", states
    assert states["shop.public.customers"] == "running", states
    report = verify(config)
    bad = {t["table"] for t in failures(report)}
    assert bad == {"public.orders"}, bad  # halted: behind the source; customers kept flowing

    _rebuild_history(config.warehouse.path, None)  # the DBA drops the constraint
    retried = subprocess.run(
        [*CLI, "--config", str(path), "dlq", "retry", letter["id"], "--json"],
        capture_output=True,
        text=True,
    )
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout) == {"action": "retry", "changed": [letter["id"]]}
    run_until_idle(config)
    report = verify(config)
    assert report["ok"], failures(report)
    conn = duckdb.connect(str(config.warehouse.path), read_only=True)
    try:
        versions = conn.execute(
            "SELECT notes FROM shop.orders_history WHERE order_id = ? ORDER BY _cdc_source_pos",
            [order_id],
        ).fetchall()
        letters = conn.execute("SELECT status FROM _cdchub.dead_letters").fetchall()
    finally:
        conn.close()
    # The retried event sits between its neighbours: before it the old value, after it the next.
    assert versions[-3:] == [(notes,), ("poison",), ("after the poison",)]
    assert letters == [("applied",)]
    assert len(_topic_records(bootstrap, topic)) == 1  # copied once, not again on retry


def _letters(path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [*CLI, "--config", str(path), "dlq", "list", "--all", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    letters: list[dict[str, Any]] = json.loads(done.stdout)
    return letters


def _wait_for(what: str, check: Any, run: subprocess.Popen[str], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        assert run.poll() is None, f"the run stopped while waiting for {what}"
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def test_dlq_retry_while_run_runs_on_a_postgres_warehouse(stack: Stack, tmp_path: Path) -> None:
    path, config = pg_warehouse_config_file(stack, tmp_path, "dlq-pg")
    assert replicate_until_verified(config)["ok"]
    with pg_warehouse(config) as conn:  # a DBA's constraint the poisoned version breaks
        conn.execute(
            "ALTER TABLE shop.orders_history ADD CONSTRAINT no_poison "
            "CHECK (notes IS NULL OR notes <> 'poison') NOT VALID"
        )
    log = (tmp_path / "run.log").open("w")
    run = subprocess.Popen(
        [*CLI, "--config", str(path), "run"], stdout=log, stderr=subprocess.STDOUT, text=True
    )
    try:
        order_id, notes = _poison_one_order(stack)
        [letter] = _wait_for(
            "the dead letter", lambda: [x for x in _letters(path) if x["status"] == "open"], run
        )
        assert letter["table"] == "public.orders" and letter["error_kind"] == "apply"
        assert "no_poison" in letter["error"]
        with pg_warehouse(config) as conn:  # the DBA drops the constraint
            conn.execute("ALTER TABLE shop.orders_history DROP CONSTRAINT no_poison")
        retried = subprocess.run(
            [*CLI, "--config", str(path), "dlq", "retry", letter["id"]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert retried.returncode == 0, retried.stderr[-2000:]
        _wait_for(
            "the retried letter to be applied",
            lambda: [x for x in _letters(path) if x["status"] == "applied"],
            run,
        )
        # The halted table resumes behind it: the run catches up with the source.
        _wait_for("orders to catch up", lambda: verify(config)["ok"], run)
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
        log.close()
    assert run.returncode == 0, (tmp_path / "run.log").read_text()[-3000:]
    with pg_warehouse(config) as conn:
        versions = conn.execute(
            "SELECT notes FROM shop.orders_history WHERE order_id = %s ORDER BY _cdc_source_pos",
            [order_id],
        ).fetchall()
    # The retried event sits between its neighbours: before it the old value, after it the next.
    assert versions[-3:] == [(notes,), ("poison",), ("after the poison",)]
    assert [x["status"] for x in _letters(path)] == ["applied"]
