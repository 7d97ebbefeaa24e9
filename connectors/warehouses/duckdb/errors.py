"""DuckDB driver errors, classified retryable or terminal (registered by `connectors.failures`)."""

from __future__ import annotations

from core.errors import ResourceExhausted, Retryable, Terminal
from core.failures import Verdict


class DuckDBOutOfMemory(ResourceExhausted):
    """DuckDB needed more than `warehouse.memory_limit` for work it cannot spill to disk."""

    hint = (
        "raise warehouse.memory_limit in the config (DuckDB spills joins, sorts and windows past "
        "it, not all of its work), then start `cdchub run` again (the batch was not committed; "
        "nothing is lost)"
    )


def classify(exc: BaseException) -> Verdict:
    """DuckDB: a write-write conflict between transactions is retryable; running out of memory
    is `DuckDBOutOfMemory` (the run stops, no table is at fault); the rest is terminal."""
    import duckdb

    if isinstance(exc, duckdb.OutOfMemoryException):
        return DuckDBOutOfMemory

    if isinstance(exc, duckdb.TransactionException):
        return Retryable  # "Conflict on update" / "Conflict on tuple deletion"
    if isinstance(exc, duckdb.IOException) and "lock" not in str(exc).lower():
        return Retryable  # a transient read/write failure of the file; a held lock is not
    return Terminal
