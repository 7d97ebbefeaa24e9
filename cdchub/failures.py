"""Driver and client errors classified as retryable or terminal, and the retry policy for them.

One function per warehouse driver or client says whether a failure may pass if the same operation is
tried again (connection lost, lock or serialization conflict, broker unavailable, timeout) or needs a
human (bad SQL, permission, a constraint, a type that does not fit). `classify` dispatches on the
exception's module, so a driver that is not installed is never imported. `retrying` is the tenacity
policy: bounded attempts, exponential backoff, each retry logged with what was being done.

Errors cdchub raises on purpose carry their class already: `Retryable` and `Terminal` subclasses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from cdchub.errors import CdcHubError, Retryable, Terminal

log = logging.getLogger(__name__)

Verdict = type[Retryable] | type[Terminal]


def classify_duckdb(exc: BaseException) -> Verdict:
    """DuckDB: a write-write conflict between transactions is retryable; the rest is terminal."""
    import duckdb

    if isinstance(exc, duckdb.TransactionException):
        return Retryable  # "Conflict on update" / "Conflict on tuple deletion"
    if isinstance(exc, duckdb.IOException) and "lock" not in str(exc).lower():
        return Retryable  # a transient read/write failure of the file; a held lock is not
    return Terminal


# SQLSTATE classes and codes that pass on retry: connection exceptions (08), the server shutting
# down (57P), serialization failure, deadlock, lock not available, query canceled (statement or
# lock timeout), too many connections.
_PG_RETRYABLE_CLASSES = ("08", "57P")
_PG_RETRYABLE_CODES = {"40001", "40P01", "55P03", "57014", "53300"}


def classify_psycopg(exc: BaseException) -> Verdict:
    """psycopg 3: connection loss, conflicts and timeouts are retryable; the rest is terminal."""
    import psycopg

    state = getattr(exc, "sqlstate", None) or ""
    if state in _PG_RETRYABLE_CODES or state.startswith(_PG_RETRYABLE_CLASSES):
        return Retryable
    if isinstance(exc, psycopg.OperationalError) and not state:
        return Retryable  # no SQLSTATE: the connection broke (server gone, network)
    if isinstance(exc, psycopg.InterfaceError) and "closed" in str(exc).lower():
        return Retryable  # the connection was closed under the session
    return Terminal


# Snowflake error numbers that pass on retry: lock wait timeout / transaction aborted by a conflict,
# statement timed out, service busy. Network failures are OperationalError without a SQL error code.
_SNOWFLAKE_RETRYABLE_ERRNOS = {625, 604, 608, 1060, 250001, 250003, 250005}
_SNOWFLAKE_RETRYABLE_CLASSES = {
    "OperationalError",
    "ServiceUnavailableError",
    "GatewayTimeoutError",
    "RequestTimeoutError",
    "BadGatewayError",
    "OtherHTTPRetryableError",
    "RetryRequest",
}


def classify_snowflake(exc: BaseException) -> Verdict:
    """The Snowflake connector: network, busy service, lock and statement timeouts are retryable."""
    if type(exc).__name__ in _SNOWFLAKE_RETRYABLE_CLASSES:
        return Retryable
    if getattr(exc, "errno", None) in _SNOWFLAKE_RETRYABLE_ERRNOS:
        return Retryable
    return Terminal


def classify_kafka(exc: BaseException) -> Verdict:
    """kafka-python: its errors say whether they are retriable; connection and timeouts are."""
    from kafka import errors

    if isinstance(
        exc,
        errors.KafkaConnectionError | errors.KafkaTimeoutError | errors.BrokerNotAvailableError,
    ):
        return Retryable
    if type(exc).__name__ == "NoBrokersAvailable":  # kafka-python 2.x; 3.x times out instead
        return Retryable
    if isinstance(exc, errors.KafkaError) and getattr(exc, "retriable", False):
        return Retryable
    return Terminal


# HTTP statuses a Kafka Connect REST call may be retried after: rebalance in progress (409), too many
# requests, and what a starting or restarting worker answers. Not 500: Connect answers it for
# configs it cannot load, which no retry fixes.
RETRYABLE_HTTP_STATUSES = frozenset({408, 409, 425, 429, 502, 503, 504})


def classify_httpx(exc: BaseException) -> Verdict:
    """httpx: transport failures (refused, reset, timeouts) and busy statuses are retryable."""
    import httpx

    if isinstance(exc, httpx.TransportError):
        return Retryable
    if (
        isinstance(exc, httpx.HTTPStatusError)
        and exc.response.status_code in RETRYABLE_HTTP_STATUSES
    ):
        return Retryable
    return Terminal


_BY_MODULE: dict[str, Callable[[BaseException], Verdict]] = {
    "duckdb": classify_duckdb,
    "_duckdb": classify_duckdb,
    "psycopg": classify_psycopg,
    "snowflake": classify_snowflake,
    "kafka": classify_kafka,
    "httpx": classify_httpx,
    "httpcore": lambda _exc: Retryable,  # httpx's transport layer: a connection problem
}


def classify(exc: BaseException) -> Verdict:
    """Retryable or Terminal for any exception (unknown ones are terminal: do not loop on a bug)."""
    if isinstance(exc, CdcHubError):
        return Retryable if isinstance(exc, Retryable) else Terminal
    for cls in type(exc).__mro__:
        root = cls.__module__.split(".", 1)[0]
        classifier = _BY_MODULE.get(root)
        if classifier is not None:
            return classifier(exc)
    if isinstance(exc, ConnectionError | TimeoutError):
        return Retryable
    return Terminal


def is_retryable(exc: BaseException) -> bool:
    """`classify(exc) is Retryable`."""
    return classify(exc) is Retryable


def first_line(exc: BaseException) -> str:
    """An error's message as one line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def retrying(
    doing: str,
    context: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
    *,
    attempts: int = 5,
    max_wait_s: float = 10.0,
    before_retry: Callable[[], None] | None = None,
) -> Retrying:
    """A tenacity policy: retry retryable errors `attempts` times with exponential backoff.

    Each retry is logged as a warning naming `doing` and its `context` (table, topic, offsets);
    `before_retry` runs before each new attempt (e.g. reconnect, forget cached state).
    """

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        facts = context() if callable(context) else (context or {})
        where = ", ".join(f"{k}={v}" for k, v in facts.items())
        log.warning(
            "%s failed (attempt %d of %d), retrying in %.1fs: %s%s",
            doing,
            state.attempt_number,
            attempts,
            state.next_action.sleep if state.next_action else 0.0,
            first_line(exc) if exc else "?",
            f" ({where})" if where else "",
        )
        if before_retry is not None:
            before_retry()

    return Retrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=max_wait_s),
        before_sleep=log_retry,
        reraise=True,
    )
