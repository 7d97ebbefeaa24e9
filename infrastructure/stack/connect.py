"""Kafka Connect in distributed mode with the Debezium plugins, REST on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx

from infrastructure.stack.component import Component, Launch, Progress
from infrastructure.stack.jars import JarPaths
from infrastructure.stack.kafka import LOG4J2, jvm_args, properties, write_if_changed
from infrastructure.stack.layout import HOST, StackLayout

GROUP_ID = "cdchub-connect"
_PROVIDERS = "org.apache.kafka.common.config.provider"
CONFIG_TOPIC = "cdchub-connect-configs"
OFFSET_TOPIC = "cdchub-connect-offsets"
STATUS_TOPIC = "cdchub-connect-status"
# Health: the worker is only useful once it offers both Debezium source connectors.
REQUIRED_CONNECTORS = (
    "io.debezium.connector.postgresql.PostgresConnector",
    "io.debezium.connector.mariadb.MariaDbConnector",
)


class Connect(Component):
    """The Kafka Connect worker that runs the Debezium connectors."""

    name = "connect"
    stop_timeout = 60

    def __init__(self, layout: StackLayout, jars: JarPaths | None = None) -> None:
        super().__init__(layout)
        self.jars = jars

    @property
    def port(self) -> int:
        return self.layout.config.stack.ports.connect

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def home(self) -> Path:
        return self.layout.data("connect")

    @property
    def worker_properties(self) -> Path:
        return self.home / "connect-distributed.properties"

    @property
    def log4j2(self) -> Path:
        return self.home / "log4j2.properties"

    @property
    def expect(self) -> Sequence[str]:
        return ["org.apache.kafka.connect.cli.ConnectDistributed", str(self.worker_properties)]

    def _jars(self) -> JarPaths:
        if self.jars is None:
            raise self.error("jars not resolved (call jars.ensure_jars first)")
        return self.jars

    def config(self) -> dict[str, str | int]:
        """The distributed worker config: internal topics with RF 1, JSON with schemas."""
        ports = self.layout.config.stack.ports
        return {
            "bootstrap.servers": f"{HOST}:{ports.kafka}",
            "group.id": GROUP_ID,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "true",
            "value.converter.schemas.enable": "true",
            "config.storage.topic": CONFIG_TOPIC,
            "config.storage.replication.factor": 1,
            "offset.storage.topic": OFFSET_TOPIC,
            "offset.storage.replication.factor": 1,
            "offset.storage.partitions": 5,
            "status.storage.topic": STATUS_TOPIC,
            "status.storage.replication.factor": 1,
            "status.storage.partitions": 1,
            "offset.flush.interval.ms": 1000,
            "listeners": f"http://{HOST}:{self.port}",
            "rest.advertised.host.name": HOST,
            "rest.advertised.port": self.port,
            "plugin.path": str(self._jars().debezium_plugins),
            # Every plugin here ships ServiceLoader manifests (Connect says so in hybrid mode);
            # skipping the reflective classpath scan cuts ~30s off each start.
            "plugin.discovery": "service_load",
            # Connector configs may say ${file:/x.properties:key} or ${dir:/secrets:name.password}.
            "config.providers": "file,dir",
            "config.providers.file.class": f"{_PROVIDERS}.FileConfigProvider",
            "config.providers.dir.class": f"{_PROVIDERS}.DirectoryConfigProvider",
        }

    def prepare(self, progress: Progress) -> None:
        """Write the worker and logging configs (regenerated each start)."""
        del progress
        write_if_changed(self.worker_properties, properties(self.config()))
        write_if_changed(self.log4j2, LOG4J2)

    def launch(self) -> Launch:
        """`java ConnectDistributed connect-distributed.properties`."""
        argv = [
            *jvm_args(self.layout.config.stack.connect_heap, self.log4j2),
            "-cp",
            self._jars().classpath,
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(self.worker_properties),
        ]
        return Launch(argv=argv, cwd=self.home)

    def plugins(self) -> list[str]:
        """Connector classes the worker offers (GET /connector-plugins)."""
        resp = httpx.get(f"{self.url}/connector-plugins", timeout=3)
        resp.raise_for_status()
        return [p["class"] for p in resp.json()]

    def answers(self) -> bool:
        """True once REST answers and lists both Debezium source connectors."""
        offered = set(self.plugins())
        return all(c in offered for c in REQUIRED_CONNECTORS)
