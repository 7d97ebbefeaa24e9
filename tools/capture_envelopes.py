"""Capture real Debezium envelopes of the type matrix into tests/fixtures/types/*.json.

Usage (a running stack whose config names sources `typespg` (postgres, database typespg) and
`typesmy` (mariadb, database typesmy)):

    .venv/bin/python -m tools.capture_envelopes --config /tmp/types/cdchub.yaml

It (re)creates both databases from tests/fixtures/types/*.sql, registers the two connectors with the
settings cdchub generates, lets Debezium snapshot rows 1-5, then streams the same rows as 11-15 plus
the edge cases the merge must handle (unchanged TOAST values, a key change, deletes, a truncate, a
key-less table), and writes every record of the source's topics as {topic, key, value} strings.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import httpx
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from connectors.service import apply_connectors
from core.config import HubConfig, SourceConfig, load_config
from dbschemas.demo_sources import mariadb_connect, pg_connect
from dbschemas.samples import mariadbserver, pgserver
from infrastructure.stack.layout import StackLayout

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "types"
# Incompressible text larger than the TOAST threshold (2 kB), so PostgreSQL stores it out of line.
BIG = "".join(f"{(i * 2654435761) % 4294967296:08x}" for i in range(600))

PG_STREAM = """
UPDATE toast SET small = 2 WHERE id = 1;
UPDATE toast SET small = 3, t = 'short now' WHERE id = 1;
UPDATE toast SET small = 4 WHERE id = 1;
DELETE FROM toast WHERE id = 1;
UPDATE matrix SET id = 100 WHERE id = 1;
DELETE FROM matrix WHERE id = 2;
INSERT INTO keyless VALUES (1, 'a'), (1, 'a');
UPDATE keyless SET b = 'b' WHERE a = 1;
DELETE FROM keyless;
TRUNCATE toast;
"""


def _pg_toast_row() -> str:
    return (
        f"INSERT INTO toast VALUES (1, 1, '{BIG}', jsonb_build_object('k', '{BIG}'), "
        f"convert_to('{BIG}', 'UTF8'), ARRAY['{BIG}', NULL]);"
    )


def load_postgres(layout: StackLayout) -> None:
    """Recreate `typespg` with the matrix, rows 1-5 and a TOASTed row, and publish every table."""
    pgserver.recreate_database(layout, "typespg")
    pgserver.run_script(layout, "typespg", (FIXTURES / "postgres.sql").read_text())
    rows = (FIXTURES / "postgres_rows.sql").read_text()
    pgserver.run_script(layout, "typespg", "\\set base 0\n" + rows + _pg_toast_row())
    pgserver.grant_and_publish(layout, "typespg", "cdchub_typespg")


def load_mariadb(layout: StackLayout) -> None:
    """Recreate `typesmy` with the matrix and rows 1-5."""
    mariadbserver.drop_database(layout, "typesmy")
    script = "CREATE DATABASE typesmy CHARACTER SET utf8mb4; USE typesmy;\n"
    script += (FIXTURES / "mariadb.sql").read_text()
    script += "SET @base = 0;\n" + (FIXTURES / "mariadb_rows.sql").read_text()
    mariadbserver.run_script(layout, script)


def stream(layout: StackLayout) -> None:
    """The streamed changes: the same edge rows again (11-15), then the merge edge cases."""
    rows = (FIXTURES / "postgres_rows.sql").read_text()
    pgserver.run_script(layout, "typespg", "\\set base 10\n" + rows + PG_STREAM)
    script = "USE typesmy;\nSET @base = 10;\n" + (FIXTURES / "mariadb_rows.sql").read_text()
    script += (
        # YEAR 0 only while streaming: in a snapshot it stops the connector (docs/facts.md).
        "INSERT INTO matrix (id, c_year) VALUES (16, 0);"
        "UPDATE matrix SET id = 100 WHERE id = 1; DELETE FROM matrix WHERE id = 2;"
        "INSERT INTO keyless VALUES (1, 'a'); DELETE FROM keyless; TRUNCATE matrix;\n"
    )
    mariadbserver.run_script(layout, script)
    # A zero-change check: both servers must still accept connections after the stream.
    with pg_connect(layout.pg_admin, "typespg") as conn:
        conn.execute("SELECT 1")
    mariadb_connect(layout.mariadb_admin, "typesmy").close()


def collect(bootstrap: str, prefix: str) -> list[dict]:
    """Every record of the `<prefix>.<namespace>.<table>` topics, read up to their end offsets."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    pattern = re.compile(rf"^{re.escape(prefix)}\.[^.]+\.[^.]+$")
    partitions = [
        TopicPartition(topic, p)
        for topic in sorted(t for t in consumer.topics() if pattern.match(t))
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    records: list[dict] = []
    while any(consumer.position(tp) < end for tp, end in ends.items()):
        for messages in consumer.poll(2000).values():
            for message in messages:
                records.append(
                    {
                        "topic": message.topic,
                        "key": message.key.decode() if message.key else None,
                        "value": message.value.decode() if message.value else None,
                    }
                )
    consumer.close()
    return records


def reset(config: HubConfig, sources: list[SourceConfig], layout: StackLayout) -> None:
    """Forget earlier captures: connectors with their offsets, the slot, the topics."""
    base = config.connect.url.rstrip("/")
    for source in sources:
        name = f"cdchub-{source.name}"
        if httpx.get(f"{base}/connectors/{name}", timeout=10).status_code == 200:
            httpx.put(f"{base}/connectors/{name}/stop", timeout=30)
            time.sleep(3)
            httpx.delete(f"{base}/connectors/{name}/offsets", timeout=30)
            httpx.delete(f"{base}/connectors/{name}", timeout=30)
    with pg_connect(layout.pg_admin, "postgres", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = 'cdchub_typespg'"
        )
    admin = KafkaAdminClient(bootstrap_servers=config.kafka.bootstrap_servers)
    doomed = [
        t for t in admin.list_topics()
        if t.startswith(("typespg.", "typesmy.")) or t.endswith("schema-history.typesmy")
    ]  # fmt: skip
    if doomed:
        admin.delete_topics(doomed)
        time.sleep(5)
    admin.close()


def main() -> None:
    """Load, register, stream, collect, write fixtures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.environ.get("CDCHUB_CONFIG", "cdchub.yaml"))
    args = parser.parse_args()
    config = load_config(args.config)
    layout = StackLayout(config)
    keys = {"typespg": {"public.keyless": ["a"]}, "typesmy": {"typesmy.keyless": ["a"]}}
    sources = [
        s.model_copy(update={"key_columns": keys[s.name]}) for s in config.sources if s.name in keys
    ]
    reset(config, sources, layout)
    load_postgres(layout)
    load_mariadb(layout)
    apply_connectors(config.model_copy(update={"sources": sources}), progress=print)
    time.sleep(15)  # the snapshot runs in the background after the connector starts
    stream(layout)
    time.sleep(15)  # let the streamed changes reach Kafka
    for name in ("typespg", "typesmy"):
        records = collect(config.kafka.bootstrap_servers, name)
        out = FIXTURES / f"{name}_envelopes.json"
        out.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
        print(f"{name}: {len(records)} records → {out}")


if __name__ == "__main__":
    main()
