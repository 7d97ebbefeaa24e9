"""Driver and client errors classified as retryable or terminal, one function per driver.

The warehouse drivers' functions live in each warehouse's folder (`connectors/warehouses/<kind>/
errors.py`); Kafka's and httpx's are here.

One function per warehouse driver or client says whether a failure may pass if the same operation is
tried again (connection lost, lock or serialization conflict, broker unavailable, timeout) or needs a
human (bad SQL, permission, a constraint, a type that does not fit). Each is registered with
`core.failures.classify` by the exception's root module (importing `connectors` registers them), and
imports its driver lazily, so a driver that is not installed is never imported. The policy itself
(`classify`, `retrying`) lives in `core.failures`, so `merge/` retries without knowing any driver.
"""

from __future__ import annotations

from connectors.warehouses.duckdb.errors import classify as classify_duckdb
from connectors.warehouses.postgres.errors import classify as classify_psycopg
from connectors.warehouses.snowflake.errors import classify as classify_snowflake
from core.errors import Retryable, Terminal
from core.failures import (
    Classifier,
    Verdict,
    classify,
    first_line,
    is_retryable,
    register,
    retrying,
)


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


_CLASSIFIERS: dict[str, Classifier] = {
    "duckdb": classify_duckdb,
    "_duckdb": classify_duckdb,
    "psycopg": classify_psycopg,
    "snowflake": classify_snowflake,
    "kafka": classify_kafka,
    "httpx": classify_httpx,
    "httpcore": lambda _exc: Retryable,  # httpx's transport layer: a connection problem
}


for _module, _classifier in _CLASSIFIERS.items():
    register(_module, _classifier)

# Re-exported so a client needs one import for its retry policy.
__all__ = [
    "RETRYABLE_HTTP_STATUSES",
    "classify",
    "classify_duckdb",
    "classify_httpx",
    "classify_kafka",
    "classify_psycopg",
    "classify_snowflake",
    "first_line",
    "is_retryable",
    "retrying",
]
