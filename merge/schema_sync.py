"""Schema sync: the warehouse tables a source table lands in, created and kept in step with its schema.

For each table of a batch the engine asks `SchemaSync.target` for its `MergeTarget`. The first time
(or when the source schema changed) that resolves the warehouse names (`_cdchub.tables`, `NameBook`),
creates the history and current tables, adds the columns the source gained and widens the ones it
widened (`merge.evolution`), records each column's source type (`_cdchub.columns`) and logs the new
schema (`_cdchub.schema_log`). An incompatible type change raises `SchemaChangeError`: the table stops.
Each of these runs in its own transaction, before the batch's one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from core.errors import MergeError, SchemaChangeError
from core.model import ColumnType, TableId, TableSchema
from merge import control, ddl, shapes, sqltree
from merge.evolution import Change, evolve
from merge.naming import NameBook, TableNames, check_column_names
from merge.session import WarehouseSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableInfo:
    """What the engine needs to know about a source table besides its events."""

    source_kind: str
    source_database: str
    default_namespace: str


class SchemaSync:
    """Resolves, creates and evolves the warehouse tables of source tables, with caches per session."""

    def __init__(
        self, session: WarehouseSession, notify: Callable[[str], None] | None = None
    ) -> None:
        self.session = session
        self.dialect = session.dialect
        # Told when a table gets a name other than its natural one (a clash or a long name).
        self.notify = notify or log.warning
        self._book: NameBook | None = None
        self._targets: dict[TableId, shapes.MergeTarget] = {}
        # (table, schema) pairs already checked against the warehouse columns.
        self._fitted: set[tuple[TableId, TableSchema]] = set()

    def known(self, table: TableId) -> shapes.MergeTarget | None:
        """The target this session resolved for `table` already, if any."""
        return self._targets.get(table)

    def forget(self) -> None:
        """Drop the cached targets (a failed attempt may have left a table half-made)."""
        self._targets.clear()
        self._fitted.clear()

    def names(self, table: TableId, info: TableInfo) -> TableNames:
        """The warehouse names of a source table: recorded in `_cdchub.tables`, or new ones that no
        other source table holds and the warehouse can spell (see `merge.naming`).

        The control tables must exist (`Scd2Engine.ensure_control`)."""
        if self._book is None:
            recorded = {
                TableId(source, namespace, name): TableNames(schema, current, history)
                for source, namespace, name, schema, current, history in self.session.query(
                    control.select_registered()
                )
            }
            self._book = NameBook.of(
                self.dialect.fold, self.dialect.MAX_IDENTIFIER_LENGTH, recorded
            )
        names, why = self._book.resolve(table, info.default_namespace)
        if why is not None:
            self.notify(why)
        return names

    def target(
        self, table: TableId, schema: TableSchema, info: TableInfo, position: str
    ) -> shapes.MergeTarget:
        """The merge target of a table, creating, widening or evolving its warehouse tables.

        Raises:
            MergeError: the table has no key, uses a reserved column name, or a column changed type
                in a way the warehouse column cannot follow (see `merge.evolution`).
        """
        known = self._targets.get(table)
        if known is not None and (table, schema) in self._fitted:
            return known
        names = self.names(table, info)
        check_column_names(table, schema.names)
        if not schema.key:
            raise MergeError(
                "table has no primary key; give it one, or set REPLICA IDENTITY FULL and configure "
                "key columns (not supported yet)",
                table=str(table),
            )
        existing = self.session.table_columns(names.schema, names.history)
        columns, widened = self._merge_columns(table, names, known, schema, existing)
        target = self.dialect.SCRATCH.target(shapes.MergeTarget(names, tuple(columns), schema.key))
        if existing is None:
            self._create(target, table, info)
        else:
            self._widen(target, existing, widened)
        self._targets[table] = target
        self._fitted.add((table, schema))
        self._log_schema(table, schema, position)
        return target

    def _log_schema(self, table: TableId, schema: TableSchema, position: str) -> None:
        """Record a schema in `_cdchub.schema_log` the first time it is seen."""
        if not schema.columns:
            return  # a truncate's placeholder schema
        columns = json.dumps([[c.name, describe_type(c.type)] for c in schema.columns])
        query = control.select_schema_logged(table.source, table.namespace, table.table, columns)
        if self.session.query(query):
            return
        row = (
            table.source,
            table.namespace,
            table.table,
            columns,
            json.dumps(list(schema.key)),
            position,
            dt.datetime.now(dt.UTC),
        )
        insert = sqltree.insert_rows(
            control.control_table(control.SCHEMAS), [c for c, _ in control.SCHEMAS_COLUMNS]
        )
        with self.session.transaction():
            self.session.executemany(insert, [row])

    def stored_target(
        self, table: TableId, schema: TableSchema, info: TableInfo
    ) -> shapes.MergeTarget | None:
        """The target of a table this engine has not merged yet but the warehouse holds.

        A batch may open with a truncate of such a table (a restarted consumer). Truncate records
        carry no key, so the key comes from the table registry.
        """
        names = self.names(table, info)
        if self.session.table_columns(names.schema, names.history) is None:
            return None
        registry = control.control_table(control.TABLES)
        query = (
            exp.select(sqltree.col("key_columns"))
            .from_(registry)
            .where(
                exp.and_(
                    *(
                        exp.EQ(this=sqltree.col(column), expression=exp.Literal.string(value))
                        for column, value in (
                            ("source", table.source),
                            ("source_schema", table.namespace),
                            ("source_table", table.table),
                        )
                    )
                )
            )
        )
        rows = self.session.query(query)
        if not rows:
            return None
        key = tuple(json.loads(rows[0][0]))
        return self.target(table, TableSchema(schema.columns, key), info, "")

    def _merge_columns(
        self,
        table: TableId,
        names: TableNames,
        known: shapes.MergeTarget | None,
        schema: TableSchema,
        existing: list[str] | None,
    ) -> tuple[list[tuple[str, ColumnType]], list[str]]:
        """Warehouse columns after this schema (known ones in order, then new ones) and the widened.

        Columns the source dropped stay (NULL from then on): history never loses a column.
        """
        columns: dict[str, ColumnType] = dict(known.columns) if known else {}
        if not columns and existing:
            # A restart: the warehouse has the table; keep its order and the recorded types (tables
            # made before types were recorded take them from the schema).
            recorded = self._recorded_types(names)
            for name in existing:
                if name in recorded:
                    columns[name] = recorded[name]
                elif name in schema.names:
                    columns[name] = schema.column(name).type
                elif not name.startswith("_cdc_"):
                    columns[name] = ColumnType("string")
        widened = []
        for column in schema.columns:
            old = columns.get(column.name)
            if old is None:
                columns[column.name] = column.type
                continue
            verdict = evolve(old, column.type, self.dialect)
            if verdict.change is Change.INCOMPATIBLE:
                raise SchemaChangeError(
                    f"column {column.name!r} changed type from {describe_type(old)} to "
                    f"{describe_type(column.type)}, which its warehouse column cannot hold without "
                    "losing data. The table is stopped and its changes are held in the warehouse; "
                    "the other tables go on. Alter the warehouse column by hand (history and "
                    "current table) to a type that holds both, run `cdchub schema accept "
                    f"{table.source}.{table.namespace}.{table.table}`, then restart `cdchub run`",
                    table,
                    table=str(table),
                    column=column.name,
                    old_type=describe_type(old),
                    new_type=describe_type(column.type),
                    new_column_type=column.type,
                )
            if verdict.change is Change.WIDEN:
                columns[column.name] = verdict.column_type
                widened.append(column.name)
        return list(columns.items()), widened

    def _create(self, target: shapes.MergeTarget, table: TableId, info: TableInfo) -> None:
        with self.session.transaction():
            self.session.execute(ddl.create_schema(target.names.schema))
            self.session.execute(
                ddl.create_table(target.history, shapes.history_columns(target), self.dialect)
            )
            self.session.execute(
                ddl.create_table(target.current, shapes.current_columns(target), self.dialect)
            )
            if self.dialect.INDEXES_HISTORY:
                index = ddl.history_index(target, self.dialect.MAX_IDENTIFIER_LENGTH)
                self.session.execute(index)
            self._register(target, table, info)
            self._record_types(target, target.column_names)

    def _recorded_types(self, names: TableNames) -> dict[str, ColumnType]:
        rows = self.session.query(control.select_column_types(names.schema, names.history))
        return {name: column_type_from_json(text) for name, text in rows}

    def _record_types(self, target: shapes.MergeTarget, changed: list[str]) -> None:
        """Remember the source type each changed column now has in the warehouse."""
        if not changed:
            return
        types = dict(target.columns)
        schema, history = target.names.schema, target.names.history
        self.session.execute(control.delete_column_types(schema, history, changed))
        now = dt.datetime.now(dt.UTC)
        insert = sqltree.insert_rows(
            control.control_table(control.COLUMNS), [c for c, _ in control.COLUMNS_COLUMNS]
        )
        self.session.executemany(
            insert,
            [(schema, history, n, column_type_to_json(types[n]), now) for n in changed],
        )

    def _widen(self, target: shapes.MergeTarget, existing: list[str], widened: list[str]) -> None:
        """Add the columns the source gained; alter the ones it widened (both tables)."""
        missing = [(n, t) for n, t in target.columns if n not in existing]
        altered = [(n, t) for n, t in target.columns if n in widened and n in existing]
        if not missing and not altered:
            return
        with self.session.transaction():
            for tbl in (target.history, target.current):
                for name, ctype in missing:
                    self.session.execute(ddl.add_column(tbl, name, ctype, self.dialect))
                for name, ctype in altered:
                    self.session.execute(ddl.alter_column_type(tbl, name, ctype, self.dialect))
            self._record_types(target, [n for n, _ in [*missing, *altered]])

    def _register(self, target: shapes.MergeTarget, table: TableId, info: TableInfo) -> None:
        names: TableNames = target.names
        row = (
            table.source,
            info.source_kind,
            info.source_database,
            table.namespace,
            table.table,
            names.schema,
            names.current,
            names.history,
            json.dumps(list(target.key)),
            dt.datetime.now(dt.UTC),
        )
        columns = [c for c, _ in control.TABLES_COLUMNS]
        self.session.executemany(
            sqltree.insert_rows(control.control_table(control.TABLES), columns), [row]
        )


def column_type_to_json(ctype: ColumnType) -> str:
    """A ColumnType as JSON text (for the control schema)."""
    return json.dumps(dataclasses.asdict(ctype), sort_keys=True)


def column_type_from_json(text: str) -> ColumnType:
    """The ColumnType stored by `column_type_to_json`."""

    def build(doc: dict[str, Any]) -> ColumnType:
        element = doc.pop("element", None)
        known = {f.name for f in dataclasses.fields(ColumnType)}
        args = {k: v for k, v in doc.items() if k in known}
        return ColumnType(**args, element=build(element) if element else None)

    return build(json.loads(text))


def describe_type(ctype: ColumnType) -> str:
    """A column type as an operator reads it: `decimal(p, s)`, else its logical type or kind."""
    if ctype.kind == "decimal":
        return f"decimal({ctype.precision}, {ctype.scale or 0})"
    return ctype.logical or ctype.kind
