"""psycopg errors, classified retryable or terminal (registered by `connectors.failures`)."""

from __future__ import annotations

from core.errors import ResourceExhausted, Retryable, Terminal
from core.failures import Verdict


class PostgresExhausted(ResourceExhausted):
    """The warehouse server is out of disk or memory (SQLSTATE 53100, 53200)."""

    hint = (
        "free disk or memory on the warehouse's PostgreSQL server, then start `cdchub run` "
        "again (the batch was not committed; nothing is lost)"
    )


# SQLSTATE classes and codes that pass on retry: connection exceptions (08), the server shutting
# down (57P), serialization failure, deadlock, lock not available, query canceled (statement or
# lock timeout), too many connections.
_PG_RETRYABLE_CLASSES = ("08", "57P")
_PG_RETRYABLE_CODES = {"40001", "40P01", "55P03", "57014", "53300"}


def classify(exc: BaseException) -> Verdict:
    """psycopg 3: connection loss, conflicts and timeouts are retryable; the rest is terminal."""
    import psycopg

    state = getattr(exc, "sqlstate", None) or ""
    if state in ("53100", "53200"):  # disk full, out of memory
        return PostgresExhausted
    if state in _PG_RETRYABLE_CODES or state.startswith(_PG_RETRYABLE_CLASSES):
        return Retryable
    if isinstance(exc, psycopg.OperationalError) and not state:
        return Retryable  # no SQLSTATE: the connection broke (server gone, network)
    if isinstance(exc, psycopg.InterfaceError) and "closed" in str(exc).lower():
        return Retryable  # the connection was closed under the session
    return Terminal
