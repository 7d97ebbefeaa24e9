"""The real stack, started once per test session on free ports in a private state directory.

Nothing here is mocked: PostgreSQL, MariaDB, Kafka, Kafka Connect and Debezium run as real processes.
Ports are picked free at start, so a stack the user left running on the default ports is untouched.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from connectors.service import apply_connectors
from core.config import HubConfig, load_config
from dbschemas.loader import load_demo_schemas
from infrastructure.stack.layout import StackLayout
from infrastructure.stack.service import LocalStack


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


@dataclass(frozen=True)
class Stack:
    """The running test stack: its config file, config and layout."""

    config_path: Path
    config: HubConfig
    layout: StackLayout


def write_config(
    path: Path, state: Path, ports: dict[str, int], warehouse: Path, group: str
) -> Path:
    """A cdchub.yaml for the test stack (the same shape users write)."""
    doc = {
        "state_dir": str(state),
        "stack": {"ports": ports},
        "kafka": {
            "bootstrap_servers": f"127.0.0.1:{ports['kafka']}",
            "group_id": group,
            "batch_max_wait_ms": 300,
        },
        "connect": {"url": f"http://127.0.0.1:{ports['connect']}"},
        "sources": [
            {
                "name": "shop",
                "kind": "postgres",
                "port": ports["postgres"],
                "database": "shop",
                "user": "cdc_reader",
                "password_file": str(state / "secrets" / "postgres_cdc.password"),
                "tables": [
                    "public.customers",
                    "public.products",
                    "public.orders",
                    "public.order_items",
                    "public.payments",
                ],
            },
            {
                "name": "inventory",
                "kind": "mariadb",
                "port": ports["mariadb"],
                "database": "inventory",
                "user": "cdc_reader",
                "password_file": str(state / "secrets" / "mariadb_cdc.password"),
                "server_id": 184100,
            },
        ],
        "warehouse": {"kind": "duckdb", "path": str(warehouse)},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Start the whole stack once, load the demo schemas and register the connectors."""
    # Not pytest's tmp dir: it is 0700, and PostgreSQL runs as the `postgres` user who must reach it.
    base = Path(tempfile.mkdtemp(prefix="cdchub-it-"))
    base.chmod(0o755)
    names = ["postgres", "mariadb", "kafka", "kafka_controller", "connect"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    state = base / "state"
    config_path = write_config(
        base / "cdchub.yaml", state, ports, base / "warehouse.duckdb", "cdchub-it"
    )
    config = load_config(config_path)
    local = LocalStack(config)
    try:  # a start that fails half-way still stops what it started
        local.up(progress=print)
        layout = StackLayout(config)
        load_demo_schemas(layout, list(config.sources), progress=print)
        apply_connectors(config, progress=print)
        yield Stack(config_path, config, layout)
    finally:
        local.down(purge=True, progress=print)
        shutil.rmtree(base, ignore_errors=True)
