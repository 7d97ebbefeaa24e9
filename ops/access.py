"""How lag readers reach the warehouse while `cdchub run` may be writing to it.

DuckDB lets one process open a file for writing and then no other process may open it at all, not
even read-only. So: inside `cdchub run`, the dashboard reads through a cursor of the runner's own
connection (`CursorSession`, a snapshot per query); outside it, `cdchub lag` and `cdchub dashboard`
open the file read-only, and when a run holds it they ask that run's dashboard endpoint instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from sqlglot import exp

from connectors.warehouses import open_session
from core.config import DuckDBWarehouse, HubConfig
from core.errors import CdcHubError, MergeError
from merge.dialects.base import Dialect
from ops.lag_report import build_report

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ObservabilityError(CdcHubError):
    """A lag report could not be produced."""


def parse_window(text: str) -> float:
    """`15m`, `90s`, `1h`, `2d` or a number of seconds, as seconds."""
    match = _WINDOW.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ObservabilityError(f"window {text!r}: write a duration such as 90s, 15m, 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


class CursorSession:
    """The read half of a WarehouseSession on a DuckDB connection shared with a writer thread."""

    def __init__(self, cursor: Callable[[], Any], dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect

    def query(self, statement: exp.Expression) -> list[tuple[Any, ...]]:
        """Run a query on a fresh cursor (its own snapshot; safe beside the writer)."""
        cursor = self.cursor()
        try:
            return cursor.execute(self.dialect.render(statement)).fetchall()
        finally:
            cursor.close()

    def table_columns(self, schema: str, table: str) -> list[str] | None:
        """Column names of `schema.table`, or None when it does not exist."""
        query = (
            exp.select(exp.column("column_name"))
            .from_(exp.table_("columns", db="information_schema"))
            .where(
                exp.and_(
                    exp.EQ(this=exp.column("table_schema"), expression=exp.Literal.string(schema)),
                    exp.EQ(this=exp.column("table_name"), expression=exp.Literal.string(table)),
                )
            )
            .order_by(exp.column("ordinal_position"))
        )
        return [r[0] for r in self.query(query)] or None


def report_from_running(config: HubConfig, window_s: float) -> dict[str, Any]:
    """The report served by a running `cdchub run` on the configured dashboard port."""
    dash = config.observability.dashboard
    url = f"http://{dash.host}:{dash.port}/api/lag"
    response = httpx.get(url, params={"window": window_s}, timeout=60)
    response.raise_for_status()
    return response.json()


def lag_report(config: HubConfig, window_s: float) -> dict[str, Any]:
    """The lag report, from the warehouse file or, while a run holds it, from that run.

    Raises:
        ObservabilityError: no warehouse yet, or it is locked and no run answers.
    """
    if isinstance(config.warehouse, DuckDBWarehouse) and not config.warehouse.path.exists():
        raise ObservabilityError(
            "no warehouse yet: run `cdchub run` first", path=str(config.warehouse.path)
        )
    try:
        session = open_session(config, read_only=True)
    except MergeError as locked:
        try:
            return report_from_running(config, window_s)
        except httpx.HTTPError as exc:
            raise ObservabilityError(
                "the warehouse is held by another process and no `cdchub run` dashboard answers "
                f"on port {config.observability.dashboard.port}: {exc}"
            ) from locked
    try:
        return build_report(session, config, window_s=window_s)
    finally:
        session.close()
