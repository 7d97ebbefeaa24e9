"""One small dialect object per warehouse: capability flags, a type map, rendering."""

from merge.dialects.base import Dialect
from merge.dialects.duckdb import DuckDBDialect
from merge.dialects.postgres import PostgresDialect
from merge.dialects.snowflake import SnowflakeDialect

DIALECTS: dict[str, type[Dialect]] = {
    "duckdb": DuckDBDialect,
    "postgres": PostgresDialect,
    "snowflake": SnowflakeDialect,
}


def dialect_for(kind: str) -> Dialect:
    """The dialect object of a warehouse kind (`duckdb`, ...)."""
    try:
        return DIALECTS[kind]()
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown warehouse kind {kind!r} (known: {known})") from None
