"""Debezium connector configs generated from a `SourceConfig` (never hand-edited JSON per environment).

Settings every source gets, and why:
- JSON converter with schemas: the consumer needs the Connect schema to decode logical types.
- decimals are never doubles. PostgreSQL: `decimal.handling.mode=string`, because `precise` STOPS
  the connector on a NaN/±Infinity numeric (docs/facts.md); the text keeps every digit. MariaDB/MySQL:
  `precise` (base64 unscaled bytes + scale; their DECIMAL has no NaN).
- `column.propagate.source.type=.*`: each field carries its source type name, length and scale
  (`__debezium.source.column.*`), so a converter can tell a PostgreSQL numeric(p,s) sent as text from
  text, and a MySQL TIME (a duration up to ±838 h) from a time of day.
- `interval.handling.mode=string` (PostgreSQL): ISO-8601 durations keep months apart from days;
  the default microsecond count assumes 30-day months.
- `bigint.unsigned.handling.mode=precise` (MariaDB/MySQL): BIGINT UNSIGNED above 2^63-1 would wrap
  to a negative long otherwise.
- `enable.time.adjuster=false` (MariaDB/MySQL): the adjuster reads years 0-69 as 2000-2069.
- `provide.transaction.metadata=true`: transaction ids and `total_order` for ordering inside a
  transaction, and BEGIN/END records for transaction-consistent apply.
- `skipped.operations=none`: PostgreSQL skips TRUNCATE by default; a hub that misses truncates diverges.
- producer overrides: zstd compression and batches of up to 256 KiB with a 20 ms linger. The JSON
  converter repeats each table's schema in every record (~8 KB a record); compressed batches are
  ~20x smaller on the broker, on the wire and through the consumer's network loop, whose cost in
  Python is per byte and per record batch (issue 9). Needs the worker's
  `connector.client.config.override.policy` to allow it (Kafka's default, `All`, does).
- heartbeats: keep lag measurable (and the PostgreSQL slot advancing) while the source is idle.
- signaling (`signal.data.collection`) and notifications to a Kafka topic: `cdchub backfill` starts an
  incremental snapshot through the signaling table and follows it by its notifications.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.heartbeat import action_query, heartbeat_table
from connectors.signals import notification_topic, signal_collection
from core.config import HubConfig, SourceConfig

CONNECTOR_CLASSES = {
    "postgres": "io.debezium.connector.postgresql.PostgresConnector",
    "mariadb": "io.debezium.connector.mariadb.MariaDbConnector",
    "mysql": "io.debezium.connector.mysql.MySqlConnector",
}
HEARTBEAT_TOPIC_PREFIX = "__debezium-heartbeat"
# How the connector's producer writes (see the module docstring): compact, large record batches.
PRODUCER_OVERRIDES = {
    "producer.override.compression.type": "zstd",
    "producer.override.batch.size": str(256 * 1024),
    "producer.override.linger.ms": "20",
}


def connector_name(source: SourceConfig) -> str:
    """The Kafka Connect name of a source's connector."""
    return f"cdchub-{source.name}"


def transaction_topic(source: SourceConfig) -> str:
    """Where Debezium writes the source's transaction BEGIN/END records."""
    return f"{source.name}.transaction"


def heartbeat_topic(source: SourceConfig) -> str:
    """Where Debezium writes the source's heartbeats."""
    return f"{HEARTBEAT_TOPIC_PREFIX}.{source.name}"


def _include_list(tables: list[str]) -> str:
    # Debezium include lists are comma-separated regular expressions matched against the whole name.
    return ",".join(re.escape(t) for t in tables)


MASK = "********"


def connector_config(
    source: SourceConfig, hub: HubConfig, *, mask_secrets: bool = False
) -> dict[str, str]:
    """The full Kafka Connect config of a source's Debezium connector.

    With `mask_secrets` the password is not even read (`connectors apply --dry-run`).
    """
    config: dict[str, Any] = {
        "connector.class": CONNECTOR_CLASSES[source.kind],
        "tasks.max": "1",
        "topic.prefix": source.name,
        "database.hostname": source.host,
        "database.port": str(source.port),
        "database.user": source.user,
        "database.password": MASK if mask_secrets else source.secret(),
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "true",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "true",
        "decimal.handling.mode": "string" if source.kind == "postgres" else "precise",
        "column.propagate.source.type": ".*",
        "provide.transaction.metadata": "true",
        "skipped.operations": "none",
        "tombstones.on.delete": "true",
        "heartbeat.interval.ms": str(source.heartbeat_interval_ms),
        "snapshot.mode": source.snapshot_mode,
        **PRODUCER_OVERRIDES,
    }
    if source.kind == "postgres":
        config.update(
            {
                "plugin.name": "pgoutput",
                "database.dbname": source.database,
                "slot.name": source.slot,
                "publication.name": source.publication,
                # The publication is created by an admin (see docs); the CDC user needs no ownership.
                "publication.autocreate.mode": "disabled",
                "interval.handling.mode": "string",
            }
        )
    else:
        config.update(
            {
                "database.server.id": str(source.server_id or 184000 + _stable_id(source.name)),
                "database.include.list": re.escape(source.database),
                # The two connectors spell "no TLS" differently; the other spelling is refused.
                "database.ssl.mode": "disabled" if source.kind == "mysql" else "disable",
                "include.schema.changes": "false",
                "bigint.unsigned.handling.mode": "precise",
                # On by default, it rewrites years 0-69 to 2000-2069 (`0001-01-01` → `2001-01-01`).
                "enable.time.adjuster": "false",
                "schema.history.internal.kafka.bootstrap.servers": hub.kafka.bootstrap_servers,
                "schema.history.internal.kafka.topic": f"_cdchub.schema-history.{source.name}",
            }
        )
    if source.tables:
        config["table.include.list"] = _include_list(source.tables)
    if source.key_columns:
        # Debezium keys records of a key-less table by these columns (its record key is null otherwise).
        config["message.key.columns"] = ";".join(
            f"{re.escape(t)}:{','.join(cols)}" for t, cols in sorted(source.key_columns.items())
        )
    excluded = []
    beat = heartbeat_table(source)
    if beat is not None:
        config["heartbeat.action.query"] = action_query(source)
        excluded.append(".".join(beat))
    collection = signal_collection(source)
    if collection is not None:
        config["signal.data.collection"] = collection
        config["notification.enabled.channels"] = "sink"
        config["notification.sink.topic.name"] = notification_topic(source)
        excluded.append(collection)
        # Debezium captures the signaling table whatever the include/exclude lists say (observed,
        # docs/facts.md); Kafka Connect's own Filter drops its records before they reach a topic,
        # after Debezium has read the signals from them.
        config.update(
            {
                "transforms": "cdchubDropSignals",
                "transforms.cdchubDropSignals.type": "org.apache.kafka.connect.transforms.Filter",
                "transforms.cdchubDropSignals.predicate": "cdchubIsSignal",
                "predicates": "cdchubIsSignal",
                "predicates.cdchubIsSignal.type": (
                    "org.apache.kafka.connect.transforms.predicates.TopicNameMatches"
                ),
                "predicates.cdchubIsSignal.pattern": re.escape(f"{source.name}.{collection}"),
            }
        )
    if excluded and not source.tables:
        # Published (or in the binlog) so Debezium sees them, but never captured as tables.
        config["table.exclude.list"] = _include_list(excluded)
    config.update(source.extra)
    return {k: str(v) for k, v in config.items()}


def _stable_id(name: str) -> int:
    """A small number derived from the source name (server ids must differ between replicas)."""
    return sum(name.encode()) % 1000


def redacted(config: dict[str, str]) -> dict[str, str]:
    """The config with secrets masked, for display."""
    return {k: (MASK if "password" in k else v) for k, v in config.items()}
