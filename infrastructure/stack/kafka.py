"""Apache Kafka as one combined KRaft broker+controller on 127.0.0.1 (no ZooKeeper, no Docker)."""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from infrastructure.stack import process
from infrastructure.stack.component import Component, Launch, Progress
from infrastructure.stack.jars import JarPaths
from infrastructure.stack.layout import HOST, StackLayout

# Log4j2 (Kafka 4 dropped log4j 1): everything to stdout, which spawn() appends to the log file.
LOG4J2 = """\
# written by cdchub
status = warn
name = cdchub
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
# Connect's plugin scan and the request logger are very chatty at INFO.
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.connectrest.name = org.apache.kafka.connect.runtime.rest.RestServer
logger.connectrest.level = WARN
"""


def java_binary() -> str:
    """`$JAVA_HOME/bin/java`, else `java` from PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java") or "java"


def jvm_args(heap: str, log4j2: Path) -> list[str]:
    """The JVM options kafka-run-class.sh would use, with our heap and logging config."""
    return [
        java_binary(),
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j2}",
    ]


def write_if_changed(path: Path, text: str) -> None:
    """Write a generated config file (only when its content differs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def properties(values: dict[str, str | int]) -> str:
    """A Java .properties document (values here never need escaping)."""
    return "# written by cdchub; regenerated on every `stack up`\n" + "".join(
        f"{k}={v}\n" for k, v in values.items()
    )


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64, unpadded (Kafka's Uuid format)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):  # Kafka rejects ids that look like command-line flags
            return cid


class Kafka(Component):
    """The Kafka broker (and its own KRaft controller)."""

    name = "kafka"
    stop_timeout = 60

    def __init__(self, layout: StackLayout, jars: JarPaths | None = None) -> None:
        super().__init__(layout)
        self.jars = jars

    @property
    def port(self) -> int:
        return self.layout.config.stack.ports.kafka

    @property
    def controller_port(self) -> int:
        return self.layout.config.stack.ports.kafka_controller

    @property
    def home(self) -> Path:
        return self.layout.data("kafka")

    @property
    def log_dirs(self) -> Path:
        return self.home / "kraft-logs"

    @property
    def server_properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def log4j2(self) -> Path:
        return self.home / "log4j2.properties"

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def expect(self) -> Sequence[str]:
        return ["kafka.Kafka", str(self.server_properties)]

    def config(self) -> dict[str, str | int]:
        """server.properties for a single combined node; every replication factor is 1."""
        return {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.bootstrap.servers": f"{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": (
                f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}"
            ),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": 1,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "auto.create.topics.enable": "true",
            # Consumers of a fresh group start at once instead of waiting 3s for more members.
            "group.initial.rebalance.delay.ms": 0,
            "log.retention.hours": 168,
            "log.segment.bytes": 64 * 1024 * 1024,
        }

    def _jars(self) -> JarPaths:
        if self.jars is None:
            raise self.error("jars not resolved (call jars.ensure_jars first)")
        return self.jars

    def prepare(self, progress: Progress) -> None:
        """Write the configs; format the KRaft storage once (first start only)."""
        write_if_changed(self.server_properties, properties(self.config()))
        write_if_changed(self.log4j2, LOG4J2)
        if (self.log_dirs / "meta.properties").exists():
            return
        progress(f"kafka: formatting KRaft storage in {self.log_dirs}")
        process.run(
            [
                *jvm_args("256m", self.log4j2),
                "-cp",
                self._jars().classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(self.server_properties),
                "--standalone",  # a single-voter dynamic quorum: this node is the controller
            ],
            component=self.name,
            log=self.log,
            timeout=120,
        )

    def launch(self) -> Launch:
        """`java kafka.Kafka server.properties`."""
        argv = [
            *jvm_args(self.layout.config.stack.kafka_heap, self.log4j2),
            "-cp",
            self._jars().classpath,
            "kafka.Kafka",
            str(self.server_properties),
        ]
        return Launch(argv=argv, cwd=self.home)

    def answers(self) -> bool:
        """True once the broker listener accepts connections (it opens after the broker is up)."""
        return process.port_open(HOST, self.port)
