"""`cdchub dashboard`: a small web page of replication lag per table, served on 127.0.0.1.

Standard library only (`http.server`). The page (`static/dashboard.html`) draws its charts as SVG
with a few lines of plain JavaScript, so it needs no internet and vendors no chart library. It
refreshes itself from `/api/lag`, the same report `cdchub lag --json` prints.

Inside `cdchub run` it may also answer `POST /api/query` (read-only SQL for the CLI while the run holds
a DuckDB file), only with the run's token: see `ops/access.py`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlparse

from core.errors import CdcHubError

log = logging.getLogger(__name__)
ReportFn = Callable[[float], dict[str, Any]]
# SQL -> (Arrow IPC stream, DuckDB type name per column)
QueryFn = Callable[[str], tuple[bytes, list[str]]]
QUERY_PATH = "/api/query"
# A replay handed to the running hub by `cdchub replay --execute` (same token as queries).
REPLAY_PATH = "/api/replay"
# A dead-letter decision (retry, skip) handed to the running hub by `cdchub dlq`.
DLQ_PATH = "/api/dlq"
TYPES_HEADER = "X-Cdchub-Column-Types"
MAX_QUERY_BYTES = 1_000_000
STATIC = {
    "/": ("dashboard.html", "text/html; charset=utf-8"),
    "/index.html": ("dashboard.html", "text/html; charset=utf-8"),
}


def _static(name: str) -> bytes:
    return resources.files("ops").joinpath("static", name).read_bytes()


def _handler(
    report: ReportFn,
    default_window_s: float,
    query: QueryFn | None = None,
    authorized: Callable[[str | None], bool] | None = None,
    replay: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    dlq: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> type[BaseHTTPRequestHandler]:
    jobs = {path: fn for path, fn in ((REPLAY_PATH, replay), (DLQ_PATH, dlq)) if fn is not None}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("dashboard: " + format, *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path in STATIC:
                name, kind = STATIC[url.path]
                self._send(200, _static(name), kind)
                return
            if url.path == "/api/lag":
                try:
                    window = float(parse_qs(url.query).get("window", [default_window_s])[0])
                    body = json.dumps(report(window), default=str).encode()
                except Exception as exc:  # the page shows the error and keeps refreshing
                    log.warning("dashboard report failed: %s", exc)
                    body = json.dumps({"error": str(exc)}).encode()
                    self._send(500, body, "application/json")
                    return
                self._send(200, body, "application/json")
                return
            self._send(404, b"not found", "text/plain")

        def _error(self, status: int, message: str) -> None:
            self._send(status, json.dumps({"error": message}).encode(), "application/json")

        def _job(self, work: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                doc = json.loads(self.rfile.read(length))
                body = json.dumps(work(doc), default=str).encode()
            except CdcHubError as exc:
                self._error(400, str(exc))
                return
            except Exception as exc:  # handed back to the CLI as one line
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                self._error(500, f"the running hub failed the request: {first}")
                return
            self._send(200, body, "application/json")

        def do_POST(self) -> None:
            work = jobs.get(urlparse(self.path).path)
            if work is not None and authorized is not None:
                if not authorized(self.headers.get("Authorization")):
                    self._error(401, "a valid token is required")
                    return
                self._job(work)
                return
            if urlparse(self.path).path != QUERY_PATH or query is None or authorized is None:
                self._send(404, b"not found", "text/plain")
                return
            if not authorized(self.headers.get("Authorization")):
                self._error(401, "a valid query token is required")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_QUERY_BYTES:
                self._error(400, 'send one JSON object {"sql": ...} of at most 1 MB')
                return
            try:
                sql = json.loads(self.rfile.read(length))["sql"]
                body, types = query(str(sql))
            except CdcHubError as exc:  # refused by the read-only check
                self._error(400, str(exc))
                return
            except Exception as exc:  # the warehouse's own message, for the CLI to print
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                self._error(400, f"the warehouse refused the query: {first}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.apache.arrow.stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header(TYPES_HEADER, json.dumps(types))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


class DashboardServer:
    """The dashboard's HTTP server in a daemon thread."""

    def __init__(
        self,
        report: ReportFn,
        host: str = "127.0.0.1",
        port: int = 0,
        default_window_s: float = 900.0,
        query: QueryFn | None = None,
        authorized: Callable[[str | None], bool] | None = None,
        replay: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        dlq: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.server = ThreadingHTTPServer(
            (host, port), _handler(report, default_window_s, query, authorized, replay, dlq)
        )
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> DashboardServer:
        """Serve in the background."""
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="cdchub-dashboard", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self.server.serve_forever()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
