"""Retryable or terminal: the classification of any failure, and the retry policy built on it.

Errors cdchub raises on purpose carry their class already (`Retryable` and `Terminal` subclasses).
Driver and client errors are classified by one function per driver, which the I/O adapters register
by the exception's root module (`connectors.failures` registers duckdb, psycopg, snowflake, kafka and
httpx). This module imports no driver, so `merge/` can retry a batch without knowing any of them.
`retrying` is the tenacity policy: bounded attempts, exponential backoff, each retry logged with what
was being done.
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

from core.errors import CdcHubError, Retryable, Terminal

log = logging.getLogger(__name__)

Verdict = type[Retryable] | type[Terminal]
Classifier = Callable[[BaseException], Verdict]

# Root module of an exception's class -> its driver's classifier (filled by `register`).
_BY_MODULE: dict[str, Classifier] = {}


def register(module: str, classifier: Classifier) -> None:
    """Classify exceptions whose class comes from the root module `module` with `classifier`."""
    _BY_MODULE[module] = classifier


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
