"""Snowflake connector errors, classified retryable or terminal (registered by
`connectors.failures`)."""

from __future__ import annotations

from core.errors import Retryable, Terminal
from core.failures import Verdict

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


def classify(exc: BaseException) -> Verdict:
    """The Snowflake connector: network, busy service, lock and statement timeouts are retryable."""
    if type(exc).__name__ in _SNOWFLAKE_RETRYABLE_CLASSES:
        return Retryable
    if getattr(exc, "errno", None) in _SNOWFLAKE_RETRYABLE_ERRNOS:
        return Retryable
    return Terminal
