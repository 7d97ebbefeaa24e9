"""The warehouses: one folder per kind, and the one registry of kinds.

Each folder holds the same files: `dialect.py` (flags, type map, scratch strategy: what `merge/`
renders with), `client.py` (the session: executes rendered trees, owns the bulk path), `errors.py`
(driver errors classified retryable or terminal), `values.py` (how decoded values are stored), and
`__init__.py` (its `PLUGIN`). `REGISTRY` is read by the CLI's choices, `render-sql` and
`open_session`; the config models live in `core/config.py` (the foundation imports no adapter), and a
unit test holds the two lists equal. Adding a warehouse: copy a folder, fill it, add its config model
and its `PLUGIN` below.
"""

from __future__ import annotations

from connectors.warehouses import duckdb, postgres, snowflake
from connectors.warehouses.plugin import WarehousePlugin
from core.config import HubConfig
from merge.dialect import Dialect
from merge.session import WarehouseSession

REGISTRY: dict[str, WarehousePlugin] = {
    p.kind: p for p in (duckdb.PLUGIN, postgres.PLUGIN, snowflake.PLUGIN)
}


def kinds() -> list[str]:
    """The warehouse kinds, default first (for `click.Choice` and messages)."""
    return list(REGISTRY)


def plugin(kind: str) -> WarehousePlugin:
    """The registry entry of a kind.

    Raises:
        ValueError: an unknown kind (the message lists the known ones).
    """
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown warehouse kind {kind!r} (known: {', '.join(kinds())})") from None


def dialect_for(kind: str) -> Dialect:
    """The dialect object of a warehouse kind (imports no driver)."""
    return plugin(kind).dialect()


def open_session(config: HubConfig, *, read_only: bool = False) -> WarehouseSession:
    """Open a session on the configured warehouse (its driver is imported only now)."""
    return plugin(config.warehouse.kind).open(config.warehouse, read_only=read_only)
