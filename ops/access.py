"""How readers reach the warehouse while `cdchub run` may be writing to it.

DuckDB lets one process open a file for writing and then no other process may open it at all, not
even read-only. So: inside `cdchub run`, the dashboard reads through a cursor of the runner's own
connection (`CursorSession`, a snapshot per query); outside it, `cdchub lag` and `cdchub dashboard`
open the file read-only, and when a run holds it they ask that run's dashboard endpoint instead.

The same run also answers read-only SQL for the CLI (`cdchub sql`, `asof`, `tables`, `verify`) at
`POST /api/query` on 127.0.0.1. That endpoint needs a per-run token, which the run writes with its
URL to a 0600 file under `state_dir` (`QueryTicket`), so only the user who can read the hub's state
can query through it. Results travel as an Arrow IPC stream (types kept: decimals, instants, lists).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlglot import exp

from connectors.warehouses import open_session
from connectors.warehouses.duckdb.dialect import DuckDBDialect
from core.config import DuckDBWarehouse, HubConfig
from core.errors import CdcHubError, ConfigError, MergeError
from merge import client_sql
from merge.asof import read_only_query
from merge.dialect import Dialect
from merge.session import WarehouseSession
from ops.dashboard import QUERY_PATH, TYPES_HEADER
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
        query = client_sql.table_columns(schema, table)
        return [r[0] for r in self.query(query)] or None


def report_from_running(config: HubConfig, window_s: float) -> dict[str, Any]:
    """The report served by a running `cdchub run` on the configured dashboard port."""
    dash = config.observability.dashboard
    url = f"http://{dash.host}:{dash.port}/api/lag"
    response = httpx.get(url, params={"window": window_s}, timeout=60)
    response.raise_for_status()
    return response.json()


def lag_report(config: HubConfig, window_s: float, *, with_kafka: bool = True) -> dict[str, Any]:
    """The lag report, from the warehouse file or, while a run holds it, from that run.

    Without `with_kafka` the Kafka side (consumer lag, heartbeats) is left out of a local read.

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
        return build_report(session, config, window_s=window_s, with_kafka=with_kafka)
    finally:
        session.close()


# -- read-only queries through a running hub -----------------------------------------------------

TICKET_FILE = "query-endpoint.json"


@dataclass(frozen=True)
class QueryTicket:
    """Where a running hub answers read-only queries, and the token it expects (one per run)."""

    url: str
    token: str
    pid: int
    warehouse: str

    @staticmethod
    def path(config: HubConfig) -> Path:
        """The ticket file of the hub that uses `config`'s state directory."""
        return Path(config.state_dir) / "run" / TICKET_FILE

    def write(self, path: Path) -> None:
        """Write the ticket readable by its owner only (0600 from creation, then renamed in)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(self), handle)
        os.replace(scratch, path)

    @classmethod
    def read(cls, path: Path) -> QueryTicket | None:
        """The ticket in `path`, or None when there is none (or it is unreadable)."""
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


# How long a reader waits, past a ticket left by a run that has exited (killed before it could
# remove it), for the run now holding the file to publish its own.
TICKET_WAIT_S = 10.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_ticket(path: Path, wait_s: float | None = None) -> QueryTicket | None:
    """The ticket in `path` if its process is alive; None when there is none, or when the one there
    was left by a process that has exited and no live one replaced it within `wait_s` (default
    `TICKET_WAIT_S`: a `cdchub run` that holds the file but has not started its endpoint yet
    publishes its own within a second or two)."""
    deadline = time.monotonic() + (TICKET_WAIT_S if wait_s is None else wait_s)
    while True:
        ticket = QueryTicket.read(path)
        if ticket is None or pid_alive(ticket.pid):
            return ticket
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def new_token() -> str:
    """A fresh per-run token."""
    return secrets.token_urlsafe(32)


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of an `Authorization: Bearer …` value with the run's token."""
    if not given or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(expected.encode(), given.removeprefix("Bearer ").encode())


def answer_query(cursor: Callable[[], Any], sql: str) -> tuple[bytes, list[str]]:
    """Run one read-only query on a fresh cursor of the run's connection: Arrow IPC bytes + types.

    Raises:
        QueryRefused: the SQL is not one read-only SELECT (checked again here: the endpoint does not
            trust its callers to have checked).
    """
    # pyarrow only when a query is served: its libraries are ~50 MB of a run's resident memory.
    import pyarrow as pa

    read_only_query(sql, DuckDBDialect.SQLGLOT_DIALECT)
    conn = cursor()
    try:
        relation = conn.sql(sql)
        types = [str(t) for t in relation.types]
        table = relation.to_arrow_table()
    finally:
        conn.close()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes(), types


def _python_value(value: Any, duck_type: str) -> Any:
    """Arrow hands back a few DuckDB types differently from DuckDB's own fetch; align them."""
    if value is None:
        return None
    if duck_type == "UUID":
        return uuid.UUID(value)
    if duck_type == "INTERVAL":  # DuckDB's fetch counts a month as 30 days
        return dt.timedelta(
            days=value.months * 30 + value.days, microseconds=value.nanoseconds // 1000
        )
    if duck_type in ("HUGEINT", "UHUGEINT"):
        return int(value)
    return value


class RemoteSession:
    """The read half of a WarehouseSession, served by the `cdchub run` that holds the DuckDB file."""

    def __init__(self, ticket: QueryTicket, timeout_s: float = 300.0) -> None:
        self.ticket = ticket
        self.dialect: Dialect = DuckDBDialect()
        self._client = httpx.Client(
            base_url=ticket.url,
            headers={"Authorization": f"Bearer {ticket.token}"},
            timeout=timeout_s,
        )

    def read(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of one read-only query, run by the hub."""
        import pyarrow as pa  # on demand, as in `answer_query`

        try:
            response = self._client.post(QUERY_PATH, json={"sql": sql})
        except httpx.HTTPError as exc:
            raise ObservabilityError(
                f"the running `cdchub run` (pid {self.ticket.pid}) did not answer at "
                f"{self.ticket.url}: {exc}"
            ) from exc
        if response.status_code != 200:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            if response.status_code == 400:
                raise ConfigError(message)
            raise ObservabilityError(
                f"the running `cdchub run` refused the query (HTTP {response.status_code}): "
                f"{message}"
            )
        types = json.loads(response.headers.get(TYPES_HEADER, "[]"))
        table = pa.ipc.open_stream(response.content).read_all()
        columns = list(table.schema.names)
        data = [table.column(i).to_pylist() for i in range(table.num_columns)]
        kinds = types if len(types) == len(columns) else [""] * len(columns)
        rows = (
            [
                tuple(_python_value(v, k) for v, k in zip(values, kinds, strict=True))
                for values in zip(*data, strict=True)
            ]
            if data
            else []
        )
        return columns, rows

    def query(self, statement: exp.Expression) -> list[tuple[Any, ...]]:
        """Fetch all rows of a query built by the hub's own code."""
        return self.read(self.dialect.render(statement))[1]

    def table_columns(self, schema: str, table: str) -> list[str] | None:
        """Column names of `schema.table`, or None when it does not exist."""
        return CursorSession.table_columns(self, schema, table)  # type: ignore[arg-type]

    def close(self) -> None:
        """Release the HTTP client."""
        self._client.close()


def open_reader(config: HubConfig) -> WarehouseSession | RemoteSession:
    """A read-only session on the warehouse: opened directly, or through the run that holds it.

    Raises:
        ObservabilityError: no DuckDB warehouse yet, or the file is held by a process that does not
            answer queries (an older `cdchub run`, another tool).
    """
    warehouse = config.warehouse
    if isinstance(warehouse, DuckDBWarehouse) and not warehouse.path.exists():
        raise ObservabilityError(
            "no warehouse yet: run `cdchub run` first", path=str(warehouse.path)
        )
    try:
        return open_session(config, read_only=True)
    except MergeError as locked:
        if not isinstance(warehouse, DuckDBWarehouse):
            raise
        path = QueryTicket.path(config)
        ticket = live_ticket(path)
        stale = QueryTicket.read(path) if ticket is None else None
        if stale is not None:
            raise ObservabilityError(
                f"the DuckDB warehouse is held by a process whose query endpoint is not known: the "
                f"ticket in {path} was left by pid {stale.pid}, which has exited; if a `cdchub run` "
                "is starting, retry in a few seconds",
                path=str(warehouse.path),
            ) from locked
        if ticket is None or ticket.warehouse != str(warehouse.path):
            raise ObservabilityError(
                "the DuckDB warehouse is held by another process that serves no query endpoint "
                "(a `cdchub run` with observability.dashboard.serve_in_run: false, or another "
                "tool); stop it or query a copy of the file",
                path=str(warehouse.path),
            ) from locked
        return RemoteSession(ticket)
