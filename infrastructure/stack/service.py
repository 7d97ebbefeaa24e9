"""`cdchub stack up|down|status`: the whole native stack, in dependency order."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

from core.config import DuckDBWarehouse, HubConfig
from infrastructure.stack.component import Component
from infrastructure.stack.connect import Connect
from infrastructure.stack.jars import JarPaths, ensure_jars, jar_paths
from infrastructure.stack.kafka import Kafka
from infrastructure.stack.layout import StackLayout
from infrastructure.stack.mariadb import MariaDB
from infrastructure.stack.postgres import Postgres

Progress = Callable[[str], None]


class LocalStack:
    """PostgreSQL, MariaDB, Kafka (KRaft) and Kafka Connect + Debezium on 127.0.0.1.

    Only processes recorded in this stack's pid files are ever reported as ours or stopped.
    """

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self.layout = StackLayout(config)
        self.postgres = Postgres(self.layout)
        self.mariadb = MariaDB(self.layout)
        self.kafka = Kafka(self.layout)
        self.connect = Connect(self.layout)

    @property
    def components(self) -> list[Component]:
        """Start order (stop order is the reverse)."""
        return [self.postgres, self.mariadb, self.kafka, self.connect]

    def _use_jars(self, jars: JarPaths) -> None:
        self.kafka.jars = jars
        self.connect.jars = jars

    def up(self, progress: Progress = print, timeout: float = 180) -> None:
        """Start whatever is not running; wait (up to `timeout` s per component) until it answers.

        Idempotent: running components are only checked (and their users re-asserted).

        Raises:
            StackError: a component failed; it names the component, port and log file.
        """
        for path in (self.layout.root, self.layout.logs, self.layout.run):
            path.mkdir(parents=True, exist_ok=True)
        # The server users (postgres, mysql) must traverse the state dir to reach their data dirs.
        self.layout.root.chmod(self.layout.root.stat().st_mode | 0o711)
        (self.layout.root / "data").mkdir(exist_ok=True, mode=0o711)
        self.layout.run.chmod(0o711)
        if not (self.kafka.running() and self.connect.running()):
            self._use_jars(ensure_jars(progress))
        else:
            self._use_jars(jar_paths())
        for component in self.components:
            component.up(progress, timeout)

    def down(self, purge: bool = False, progress: Progress = print) -> None:
        """Stop our processes (connect, kafka, mariadb, postgres); with `purge`, delete all state.

        Purging removes the state dir's data/, logs/, run/ and secrets/, and the DuckDB warehouse
        file only when it lies under the state dir: a warehouse elsewhere (`/var/lib/...`) was not
        made by the stack and is left alone.
        """
        for component in reversed(self.components):
            component.down(progress)
        if purge:
            for path in (
                self.layout.root / "data",
                self.layout.logs,
                self.layout.run,
                self.layout.secrets,
            ):
                shutil.rmtree(path, ignore_errors=True)
            if isinstance(self.config.warehouse, DuckDBWarehouse):
                warehouse = self.config.warehouse.path
                if warehouse.resolve().is_relative_to(self.layout.root.resolve()):
                    # DuckDB keeps a write-ahead log next to the database file.
                    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
                        path.unlink(missing_ok=True)
                else:
                    progress(f"kept the warehouse {warehouse}: it is outside {self.layout.root}")
            progress(f"purged {self.layout.root}")

    def status(self) -> dict[str, Any]:
        """Where each component is and whether it is running (alive AND answering)."""

        def common(c: Component) -> dict[str, Any]:
            return {"running": c.running(), "pid": c.pid(), "log": str(c.log)}

        def server(c: Postgres | MariaDB, creds: Any) -> dict[str, Any]:
            return {
                "host": creds.host,
                "port": creds.port,
                "user": creds.user,
                "password_file": str(creds.password_file),
                **common(c),
            }

        try:
            jars = jar_paths()
            versions = {"kafka": jars.kafka_version, "debezium": jars.debezium_version}
        except Exception:
            versions = {}
        return {
            "postgres": server(self.postgres, self.layout.pg_admin),
            "mariadb": server(self.mariadb, self.layout.mariadb_admin),
            "kafka": {"bootstrap_servers": self.kafka.bootstrap_servers, **common(self.kafka)},
            "connect": {"url": self.connect.url, **common(self.connect)},
            "warehouse": {
                "kind": self.config.warehouse.kind,
                "path": self.config.warehouse.location,
            },
            "versions": versions,
        }
