"""`cdchub init`: write a starting cdchub.yaml for given sources and the admin SQL they need.

A source is given as `NAME=URL`, the URL naming kind, user, host, port and database:
`shop=postgres://cdc_reader@db.internal:5432/shop`, `inventory=mariadb://cdc_reader@db:3306/inventory`
(`mysql://` for MySQL). Passwords are never taken on the command line: the config reads them from
`${<NAME>_CDC_PASSWORD}`. Every identifier in the SQL is quoted by sqlglot.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from sqlglot import exp

from connectors import heartbeat, signals
from core.config import HubConfig, SourceConfig
from core.errors import ConfigError

_KINDS = {"postgres": "postgres", "postgresql": "postgres", "mariadb": "mariadb", "mysql": "mysql"}
_PORTS = {"postgres": 5432, "mariadb": 3306, "mysql": 3306}


def parse_source(spec: str, tables: list[str] | None = None) -> dict[str, Any]:
    """`NAME=KIND://USER@HOST[:PORT]/DATABASE` as a `sources:` entry (password from the env)."""
    name, sep, url = spec.partition("=")
    parts = urlsplit(url)
    kind = _KINDS.get(parts.scheme)
    database = parts.path.lstrip("/")
    if not sep or kind is None or not parts.username or not parts.hostname or not database:
        raise ConfigError(
            f"--source {spec!r}: write NAME=KIND://USER@HOST[:PORT]/DATABASE, KIND one of "
            "postgres, mariadb, mysql (e.g. shop=postgres://cdc_reader@db:5432/shop)"
        )
    if parts.password:
        raise ConfigError(
            f"--source {name}: leave the password out of the URL; the config reads it from "
            f"${{{name.upper()}_CDC_PASSWORD}}"
        )
    entry: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "host": parts.hostname,
        "port": parts.port or _PORTS[kind],
        "database": database,
        "user": parts.username,
        "password": f"${{{name.upper()}_CDC_PASSWORD}}",
    }
    if tables:
        entry["tables"] = tables
    return entry


def _ident(name: str, dialect: str) -> str:
    return exp.to_identifier(name).sql(dialect=dialect, identify=True)


def _table(qualified: str, dialect: str) -> str:
    namespace, table = qualified.split(".", 1)
    return exp.table_(table, db=namespace, quoted=True).sql(dialect=dialect, identify=True)


def admin_sql(source: SourceConfig) -> list[str]:
    """The statements an admin runs once for a source (server settings as comments)."""
    if source.kind == "postgres":
        user = _ident(source.user, "postgres")
        tables = [_table(t, "postgres") for t in source.tables or []]
        schemas = sorted({t.split(".", 1)[0] for t in source.tables or ["public.x"]})
        lines = [
            f"-- {source.name}: PostgreSQL {source.host}:{source.port}/{source.database}",
            "-- needs wal_level = logical (ALTER SYSTEM SET wal_level = logical; then restart)",
            f"CREATE ROLE {user} WITH LOGIN REPLICATION PASSWORD '<the CDC password>';",
            *(f"GRANT USAGE ON SCHEMA {_ident(s, 'postgres')} TO {user};" for s in schemas),
        ]
        if tables:
            lines.append(f"GRANT SELECT ON {', '.join(tables)} TO {user};")
            lines.append(
                f"CREATE PUBLICATION {_ident(source.publication, 'postgres')} FOR TABLE "
                f"{', '.join(tables)} WITH (publish_via_partition_root = true);"
            )
        else:
            lines += [
                *(
                    f"GRANT SELECT ON ALL TABLES IN SCHEMA {_ident(s, 'postgres')} TO {user};"
                    for s in schemas
                ),
                f"CREATE PUBLICATION {_ident(source.publication, 'postgres')} FOR ALL TABLES "
                "WITH (publish_via_partition_root = true);",
            ]
        extra: list[str] = []
        if heartbeat.heartbeat_table(source) is not None:
            extra += heartbeat.admin_statements(source)
        if signals.signal_table(source) is not None:
            extra += signals.admin_statements(source)
        # A FOR ALL TABLES publication already holds them (and refuses ADD TABLE).
        return lines + [x for x in extra if tables or not x.startswith("ALTER PUBLICATION")]
    user = signals.mysql_account(source.user)
    lines = [
        f"-- {source.name}: {source.kind} {source.host}:{source.port}/{source.database}",
        "-- needs log_bin, binlog_format=ROW, binlog_row_image=FULL and a server_id",
        f"CREATE USER {user} IDENTIFIED BY '<the CDC password>';",
        "GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* "
        f"TO {user};",
    ]
    if signals.signal_table(source) is not None:
        lines += signals.admin_statements(source)
    return lines


def scaffold(
    specs: list[str],
    tables: list[str] | None,
    kafka: str,
    connect: str,
) -> tuple[str, list[str]]:
    """The config text and the admin SQL for the given sources (validated like a real config)."""
    if not specs:
        raise ConfigError("give at least one --source NAME=KIND://USER@HOST[:PORT]/DATABASE")
    sources = [parse_source(s, tables if len(specs) == 1 else None) for s in specs]
    doc = {
        "state_dir": ".cdchub",
        "kafka": {"bootstrap_servers": kafka, "group_id": "cdchub"},
        "connect": {"url": connect},
        "sources": sources,
        "warehouse": {"kind": "duckdb", "path": ".cdchub/warehouse.duckdb"},
    }
    # Validated like a loaded file; the password reference is not expanded, so a throwaway random
    # value stands in for it (never written anywhere).
    stand_in = secrets.token_urlsafe(12)
    validated = HubConfig.model_validate(
        {**doc, "sources": [dict(s, password=stand_in) for s in sources]}
    )
    header = (
        "# cdchub configuration written by `cdchub init`. Relative paths are relative to this file;\n"
        "# ${VAR} is read from the environment. See README.md (Point it at your own databases).\n"
    )
    text = header + yaml.safe_dump(doc, sort_keys=False)
    sql = [line for s in validated.sources for line in [*admin_sql(s), ""]]
    return text, sql


def write_config(path: Path, text: str, force: bool) -> None:
    """Write the config; an existing file is kept unless `force`."""
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it", path=str(path))
    path.write_text(text)
