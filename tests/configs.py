"""The hub configs the unit tests build: fixture sources on a DuckDB warehouse file, in memory
(`hub_config`) or as a config file for the CLI (`config_file`).

Nothing listens at the sources' port 1 (verify reports them unreachable). The recorded fixtures
(tests/fixtures) hold data records only, no BEGIN/END, so the sources apply events as they come
(`transaction_consistent=False`) unless a test asks otherwise.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Literal

import yaml

from core.config import DuckDBWarehouse, HubConfig, SourceConfig


def source(
    name: str = "shop",
    kind: Literal["postgres", "mariadb", "mysql"] = "postgres",
    *,
    transaction_consistent: bool = False,
) -> SourceConfig:
    """A source named `name` whose database is also `name`."""
    return SourceConfig(
        name=name,
        kind=kind,
        port=1,
        database=name,
        user="u",
        password="p",
        transaction_consistent=transaction_consistent,
    )


def hub_config(warehouse: Path, *sources: SourceConfig, **fields: Any) -> HubConfig:
    """A config on the DuckDB file `warehouse` with `sources` (default: `shop` on PostgreSQL)."""
    return HubConfig(
        sources=list(sources) or [source()],
        warehouse=DuckDBWarehouse(path=warehouse),
        **fields,
    )


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_file(
    tmp_path: Path,
    warehouse: Path | str | None = None,
    *,
    connect: str | None = None,
    sources: bool = True,
) -> Path:
    """`<tmp_path>/cdchub.yaml` as a user writes it: Kafka, Kafka Connect and the `shop` source on
    closed ports, the DuckDB `warehouse` (default `<tmp_path>/wh.duckdb`), no dashboard in `run`."""
    doc: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "kafka": {"bootstrap_servers": f"127.0.0.1:{closed_port()}"},
        "connect": {"url": connect or f"http://127.0.0.1:{closed_port()}"},
        "warehouse": {"kind": "duckdb", "path": str(warehouse or tmp_path / "wh.duckdb")},
        "observability": {"dashboard": {"serve_in_run": False}},
    }
    if sources:
        doc["sources"] = [
            {
                "name": "shop",
                "kind": "postgres",
                "port": closed_port(),
                "database": "shop",
                "user": "u",
                "password": "p",
            }
        ]
    path = tmp_path / "cdchub.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
