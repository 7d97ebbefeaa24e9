"""DuckDB driver errors, classified retryable or terminal (registered by `connectors.failures`)."""

from __future__ import annotations

from core.errors import Retryable, Terminal
from core.failures import Verdict


def classify(exc: BaseException) -> Verdict:
    """DuckDB: a write-write conflict between transactions is retryable; the rest is terminal."""
    import duckdb

    if isinstance(exc, duckdb.TransactionException):
        return Retryable  # "Conflict on update" / "Conflict on tuple deletion"
    if isinstance(exc, duckdb.IOException) and "lock" not in str(exc).lower():
        return Retryable  # a transient read/write failure of the file; a held lock is not
    return Terminal
