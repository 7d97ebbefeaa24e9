"""Driver and client errors are classified retryable or terminal, one function per client."""

from __future__ import annotations

import duckdb
import httpx
import psycopg
import pytest
from kafka import errors as kafka_errors
from psycopg import errors as pg_errors
from snowflake.connector import errors as sf_errors

from connectors.failures import (
    classify,
    classify_duckdb,
    classify_httpx,
    classify_kafka,
    classify_psycopg,
    classify_snowflake,
    retrying,
)
from core.errors import ConfigError, KafkaUnavailable, Retryable, SchemaChangeError, Terminal


def _status(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1:8083/connectors")
    return httpx.HTTPStatusError(
        "x", request=request, response=httpx.Response(code, request=request)
    )


CASES = [
    # DuckDB
    (classify_duckdb, duckdb.TransactionException("Conflict on update"), Retryable),
    (classify_duckdb, duckdb.CatalogException("Table x does not exist"), Terminal),
    (classify_duckdb, duckdb.ConversionException("Could not convert"), Terminal),
    (classify_duckdb, duckdb.IOException("Could not set lock on file"), Terminal),
    # psycopg
    (classify_psycopg, pg_errors.SerializationFailure("could not serialize"), Retryable),
    (classify_psycopg, pg_errors.DeadlockDetected("deadlock detected"), Retryable),
    (classify_psycopg, pg_errors.LockNotAvailable("lock"), Retryable),
    (classify_psycopg, pg_errors.AdminShutdown("terminating connection"), Retryable),
    (classify_psycopg, psycopg.OperationalError("server closed the connection"), Retryable),
    (classify_psycopg, pg_errors.UndefinedTable("relation does not exist"), Terminal),
    (classify_psycopg, pg_errors.InsufficientPrivilege("permission denied"), Terminal),
    (classify_psycopg, pg_errors.NumericValueOutOfRange("out of range"), Terminal),
    # Snowflake connector
    (classify_snowflake, sf_errors.OperationalError(msg="reset", errno=250001), Retryable),
    (classify_snowflake, sf_errors.ServiceUnavailableError(), Retryable),
    (classify_snowflake, sf_errors.ProgrammingError(msg="lock timeout", errno=625), Retryable),
    (classify_snowflake, sf_errors.ProgrammingError(msg="syntax error", errno=1003), Terminal),
    (classify_snowflake, sf_errors.ProgrammingError(msg="no such table", errno=2003), Terminal),
    # kafka-python
    (classify_kafka, kafka_errors.KafkaConnectionError("111 ECONNREFUSED"), Retryable),
    (classify_kafka, kafka_errors.BrokerNotAvailableError(), Retryable),
    (classify_kafka, kafka_errors.KafkaTimeoutError(), Retryable),
    (classify_kafka, kafka_errors.NotLeaderForPartitionError(), Retryable),
    (classify_kafka, kafka_errors.TopicAuthorizationFailedError(), Terminal),
    # httpx (the Kafka Connect client)
    (classify_httpx, httpx.ConnectError("refused"), Retryable),
    (classify_httpx, httpx.ReadTimeout("slow"), Retryable),
    (classify_httpx, _status(409), Retryable),
    (classify_httpx, _status(503), Retryable),
    (classify_httpx, _status(400), Terminal),
    (classify_httpx, _status(404), Terminal),
]


@pytest.mark.parametrize(("classifier", "exc", "verdict"), CASES)
def test_each_client_classifies_its_errors(
    classifier: object, exc: BaseException, verdict: type
) -> None:
    assert classifier(exc) is verdict  # type: ignore[operator]
    assert classify(exc) is verdict  # the dispatcher picks the same function


def test_typed_and_unknown_errors() -> None:
    assert classify(KafkaUnavailable("down")) is Retryable
    assert classify(ConfigError("bad")) is Terminal
    assert classify(SchemaChangeError("x", None)) is Terminal
    assert classify(ConnectionResetError()) is Retryable
    assert classify(KeyError("bug")) is Terminal  # a bug is not retried


def test_retrying_is_bounded_and_logs_the_context(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise pg_errors.SerializationFailure("could not serialize access")
        return "done"

    policy = retrying("apply", {"table": "shop.public.orders", "offsets": "t[0]@5"}, attempts=3)
    policy.wait = lambda _state: 0  # type: ignore[method-assign]
    assert policy(flaky) == "done"
    assert len(calls) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    assert "table=shop.public.orders, offsets=t[0]@5" in warnings[0]
    assert "SerializationFailure" in warnings[0]

    calls.clear()
    with pytest.raises(pg_errors.UndefinedTable):
        policy(lambda: (calls.append(1), (_ for _ in ()).throw(pg_errors.UndefinedTable("x"))))
    assert len(calls) == 1  # terminal: no retry


def test_connect_client_retries_a_busy_worker_and_gives_up_on_a_closed_port(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import http.server
    import socket
    import threading

    from connectors.connect_client import ConnectClient, ConnectUnavailable

    answers = [409, 200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = answers.pop(0)
            body = b'{"name": "x", "connector": {"state": "RUNNING"}, "tasks": []}'
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = ConnectClient(f"http://127.0.0.1:{server.server_port}", attempts=3)
        assert client.status("x")["connector"]["state"] == "RUNNING"
        assert answers == []  # the 409 was retried
    finally:
        server.shutdown()
        server.server_close()
    assert any(
        "Kafka Connect GET /connectors/x/status failed" in r.getMessage() for r in caplog.records
    )

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ConnectClient(f"http://127.0.0.1:{port}", attempts=2)
    with pytest.raises(ConnectUnavailable, match="not reachable"):
        client.status("x")
