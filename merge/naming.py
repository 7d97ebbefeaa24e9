"""Warehouse naming: where a source table lands, and the reserved `_cdc_` metadata columns.

One schema per source, named by the source's `name`. The current table keeps the source table's name; the
history table adds `_history`. A table outside the source's default namespace (a PostgreSQL schema other
than `public`, a MariaDB database other than the configured one) is prefixed with its namespace and `__`.

That natural name is only a proposal: two source tables can propose one warehouse table (`s.t` and
`public.s__t` both propose `s__t`; `"Orders"` and `orders` are one table on DuckDB, which compares
identifiers case-insensitively; `x_history` is the history table of `x`, `x_versions` its view), and a name can exceed the
warehouse's identifier limit (PostgreSQL cuts at 63 bytes, so `<long name>_history` would BE the
current table). `NameBook` resolves both when a table first reaches the warehouse:
- a name too long for the warehouse becomes a prefix plus `_` and 8 hex digits of a hash of the natural
  name, short enough for `<name>_history` and the views `<name>_versions`, `<name>_changes`;
- a name already held (after the warehouse's case folding) by another source table becomes a prefix
  plus `_` and 8 hex digits of a hash of the source table's full name (`source.namespace.table`); the
  table that reached the warehouse first keeps the natural name.
The result is recorded in `_cdchub.tables` and read from there ever after, so it never changes; every
reader (verify, asof, lag, drift, checksums, `cdchub tables`) takes names from that registry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.errors import MergeError
from core.model import TableId

META_PREFIX = "_cdc_"
CONTROL_SCHEMA = "_cdchub"
HISTORY_SUFFIX = "_history"
# The views `cdchub views` creates next to a table (merge/views.py): their names are the table's too.
VERSIONS_SUFFIX = "_versions"
CHANGES_SUFFIX = "_changes"
SUFFIXES = (HISTORY_SUFFIX, VERSIONS_SUFFIX, CHANGES_SUFFIX)
# Room a current table's name leaves for the longest suffix.
SUFFIX_RESERVE = max(len(x.encode()) for x in SUFFIXES)

# History metadata columns, in table order, with their semantic kinds (see docs/scd2.md).
VALID_FROM = "_cdc_valid_from"
VALID_TO = "_cdc_valid_to"
IS_CURRENT = "_cdc_is_current"
IS_DELETED = "_cdc_is_deleted"
OP = "_cdc_op"
SOURCE_POS = "_cdc_source_pos"
TX_ID = "_cdc_tx_id"
INGESTED_AT = "_cdc_ingested_at"

HISTORY_META: tuple[tuple[str, str], ...] = (
    (VALID_FROM, "timestamptz"),
    (VALID_TO, "timestamptz"),
    (IS_CURRENT, "boolean"),
    (IS_DELETED, "boolean"),
    (OP, "string"),
    (SOURCE_POS, "string"),
    (TX_ID, "string"),
    (INGESTED_AT, "timestamptz"),
)
# The current table keeps a few of them so users can see how fresh each row is.
CURRENT_META: tuple[tuple[str, str], ...] = (
    (VALID_FROM, "timestamptz"),
    (OP, "string"),
    (SOURCE_POS, "string"),
    (TX_ID, "string"),
    (INGESTED_AT, "timestamptz"),
)


@dataclass(frozen=True)
class TableNames:
    """Where one source table lives in the warehouse."""

    schema: str
    current: str
    history: str


def default_namespace(kind: str, database: str) -> str:
    """The namespace whose tables keep their bare names: `public` or the configured database."""
    return "public" if kind == "postgres" else database


def table_names(table: TableId, default_ns: str) -> TableNames:
    """The warehouse schema, current-table and history-table names of a source table."""
    base = table.table if table.namespace == default_ns else f"{table.namespace}__{table.table}"
    return TableNames(schema=table.source, current=base, history=base + HISTORY_SUFFIX)


def fit_identifier(
    name: str, limit: int | None, *, reserve: int = 0, identity: str | None = None
) -> str:
    """`name` itself when `name` plus `reserve` bytes fits `limit`, else a prefix + `_` + 8 hex digits.

    The digits hash `identity` (default: `name`), so the short form is stable and distinct names get
    distinct short forms. With `identity` given the hash is always appended (a disambiguated name).
    """
    if identity is None and (limit is None or len(name.encode()) + reserve <= limit):
        return name
    digest = hashlib.sha1((identity or name).encode()).hexdigest()[:8]
    room = len(name.encode()) if limit is None else limit - reserve - len(digest) - 1
    # Cut on a character boundary: a multi-byte character is dropped whole, never split.
    prefix = name.encode()[: max(room, 0)].decode(errors="ignore").rstrip("_")
    return f"{prefix}_{digest}"


@dataclass
class NameBook:
    """The warehouse names of every source table: recorded ones, and new ones that clash with none.

    `fold` is the warehouse's identifier comparison (lower-casing where identifiers are
    case-insensitive) and `limit` its identifier length in bytes (None: no limit).
    """

    fold: Callable[[str], str]
    limit: int | None
    recorded: dict[TableId, TableNames] = field(default_factory=dict)

    @classmethod
    def of(
        cls, fold: Callable[[str], str], limit: int | None, recorded: Mapping[TableId, TableNames]
    ) -> NameBook:
        """A book holding the names already recorded in the warehouse."""
        return cls(fold, limit, dict(recorded))

    def holder(self, schema: str, base: str, besides: TableId) -> TableId | None:
        """The source table (other than `besides`) already holding one of the names a table
        called `base` needs: `base`, `base_history` and its views' names."""
        wanted = _occupied(self.fold, base)
        for table, names in self.recorded.items():
            if table == besides or self.fold(names.schema) != self.fold(schema):
                continue
            held = _occupied(self.fold, names.current) | {self.fold(names.history)}
            if wanted & held:
                return table
        return None

    def resolve(self, table: TableId, default_ns: str) -> tuple[TableNames, str | None]:
        """The names of `table` (recorded, or new and added to the book) and, when they differ from
        the natural ones, one line saying why.

        Raises:
            MergeError: even the hashed name is held (a hash collision; never seen).
        """
        known = self.recorded.get(table)
        if known is not None:
            return known, None
        natural = table_names(table, default_ns)
        reserve = SUFFIX_RESERVE
        base = fit_identifier(natural.current, self.limit, reserve=reserve)
        why = None
        if base != natural.current:
            why = (
                f"{table}: {natural.current!r} is longer than the warehouse's {self.limit}-byte "
                f"identifier limit (with {VERSIONS_SUFFIX!r}); stored as {natural.schema}.{base}"
            )
        holder = self.holder(natural.schema, base, table)
        if holder is not None:
            base = fit_identifier(natural.current, self.limit, reserve=reserve, identity=str(table))
            why = (
                f"{table} and {holder} would both be warehouse table {natural.schema}."
                f"{natural.current}; {table} is stored as {natural.schema}.{base} "
                "(`cdchub tables` lists every mapping)"
            )
            clash = self.holder(natural.schema, base, table)
            if clash is not None:
                raise MergeError(
                    f"{table} and {clash} both map to warehouse table {natural.schema}.{base}; "
                    "exclude one of them from the source's `tables:`",
                    table=str(table),
                )
        names = TableNames(natural.schema, base, base + HISTORY_SUFFIX)
        self.recorded[table] = names
        return names, why


def _occupied(fold: Callable[[str], str], base: str) -> set[str]:
    """The folded names a table called `base` occupies: itself, its history, its views."""
    return {fold(base)} | {fold(base + suffix) for suffix in SUFFIXES}


def name_notes(
    tables: list[TableId], default_ns: str, fold: Callable[[str], str], limit: int | None
) -> list[str]:
    """Lines for the preflight: source tables that propose one warehouse table, and names too long.

    Which table of a clashing group keeps the natural name is decided when they reach the warehouse
    (the first one does), so the lines name the group and the rule, not the winner.
    """
    proposals: dict[tuple[str, str], list[TableId]] = {}
    notes = []
    for table in sorted(tables, key=str):
        names = table_names(table, default_ns)
        for name in _occupied(fold, names.current):
            proposals.setdefault((fold(names.schema), name), []).append(table)
        short = fit_identifier(names.current, limit, reserve=SUFFIX_RESERVE)
        if short != names.current:
            notes.append(
                f"{table}: {names.current!r} is longer than the warehouse's {limit}-byte identifier "
                f"limit (with {VERSIONS_SUFFIX!r}); it will be stored as {names.schema}.{short}"
            )
    seen: set[tuple[TableId, ...]] = set()
    for (schema, name), group in sorted(proposals.items()):
        members = tuple(sorted(set(group), key=str))
        if len(members) > 1 and members not in seen:
            seen.add(members)
            listed = " and ".join(str(t) for t in members)
            notes.append(
                f"{listed} would all be warehouse table {schema}.{name}; the first to reach the "
                "warehouse keeps that name, the others get a hashed suffix (never merged; "
                "`cdchub tables` shows where each one lives)"
            )
    return notes


def check_column_names(table: TableId, names: tuple[str, ...]) -> None:
    """Refuse source columns that collide with the reserved metadata prefix."""
    clashing = [n for n in names if n.lower().startswith(META_PREFIX)]
    if clashing:
        raise MergeError(
            f"source columns {clashing} use the reserved prefix {META_PREFIX!r}; "
            "rename them or exclude the table",
            table=str(table),
        )
