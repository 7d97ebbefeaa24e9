"""Debezium envelope rules: one Kafka record (JSON converter, schemas on) → a `ChangeEvent` or a control.

The JSON converter writes `{"schema": {...}, "payload": {...}}`. The schema part repeats on every record
and rarely changes, so the decoder splits the raw bytes and caches the decoded schema by its bytes:
each record then costs one parse of its payload (orjson, `cdc_consumers.jsonfast`).

Records that are not row changes:
- a tombstone (null value) follows every delete for log compaction: skipped;
- `op = "t"` is a truncate: a ChangeEvent with no key and no images;
- heartbeats and transaction BEGIN/END arrive on their own topics (see `connectors.topics`).
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cdc_consumers import jsonfast
from cdc_consumers.converters import UNAVAILABLE, UNAVAILABLE_FORMS, RowDecode, row_decoder
from cdc_consumers.positions import binlog_position, postgres_position
from core.errors import DecodeError
from core.model import (
    ChangeEvent,
    KafkaCoordinates,
    Op,
    SourceKind,
    TableId,
    TableSchema,
)

_PAYLOAD_MARK = b',"payload":'
_SCHEMA_START = len(b'{"schema":')
_POSITION = {
    SourceKind.POSTGRES: postgres_position,
    SourceKind.MARIADB: binlog_position,
    SourceKind.MYSQL: binlog_position,
}


@dataclass(frozen=True)
class _RowShape:
    schema: TableSchema
    decode: RowDecode
    # The key values of a decoded image, as a tuple (an itemgetter: no Python loop per event).
    key_of: Callable[[dict[str, Any]], tuple[Any, ...]]


def _key_getter(key: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if not key:
        return lambda _image: ()
    if len(key) == 1:
        get = operator.itemgetter(key[0])
        return lambda image: (get(image),)
    return operator.itemgetter(*key)


def _split(raw: bytes) -> tuple[bytes, bytes]:
    """Split a JSON-converter record into its schema bytes and payload bytes."""
    if not raw.startswith(b'{"schema":'):
        raise ValueError('not a JSON-converter record with schemas (expected {"schema":...})')
    cut = raw.find(_PAYLOAD_MARK)
    if cut < 0:
        raise ValueError("record has no payload")
    return raw[len(b'{"schema":') : cut], raw[cut + len(_PAYLOAD_MARK) : -1]


def payload_of(raw: bytes) -> bytes | None:
    """The payload's bytes of a JSON-converter record with its schema (the schema is not parsed);
    None for a record in any other form."""
    try:
        return _split(raw)[1]
    except ValueError:
        return None


# Debezium's unchanged-TOAST placeholder in each form, as payload bytes: a payload without any of
# them (nearly every one) is decoded without a placeholder check per column.
_PLACEHOLDER, _PLACEHOLDER_BASE64 = (form.encode() for form in UNAVAILABLE_FORMS)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NONE_UNAVAILABLE: frozenset[str] = frozenset()
_OPS = {op.value: op for op in Op}


def commit_time(source: dict[str, Any]) -> dt.datetime:
    """The source commit time (UTC), at the finest precision the connector reports."""
    ts_us = source.get("ts_us")
    if ts_us is not None:
        return _EPOCH + dt.timedelta(microseconds=int(ts_us))
    return _EPOCH + dt.timedelta(milliseconds=int(source["ts_ms"]))


class EnvelopeDecoder:
    """Decodes the data records of one source (one Debezium connector)."""

    def __init__(self, source_name: str, kind: SourceKind) -> None:
        self.source_name = source_name
        self.kind = kind
        self._position = _POSITION[kind]
        self._shapes: dict[bytes, _RowShape] = {}
        self._keys: dict[bytes, tuple[str, ...]] = {}
        # topic -> (schema bytes, key columns, shape, key schema bytes) of its last record: a
        # schema repeats on every record, and comparing bytes is cheaper than hashing them for
        # the cache.
        self._last: dict[str, tuple[bytes, tuple[str, ...], _RowShape, bytes]] = {}
        # The last transaction id and commit time read, and what they were derived into.
        self._last_tx: tuple[Any, str | None] = (None, None)
        self._last_commit: tuple[tuple[Any, Any], dt.datetime] = ((None, None), _EPOCH)
        self._tables: dict[tuple[str, str], TableId] = {}

    def decode(
        self,
        key: bytes | None,
        value: bytes | None,
        coordinates: KafkaCoordinates,
    ) -> ChangeEvent | None:
        """Decode one data record; None for a tombstone.

        Raises:
            DecodeError: the record is not a Debezium envelope cdchub understands; carries the topic,
                partition and offset.
        """
        if value is None:
            return None
        try:
            return self._decode(key, value, coordinates)
        except DecodeError:
            raise
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise DecodeError(
                f"cannot decode Debezium record: {exc}",
                topic=coordinates.topic,
                partition=coordinates.partition,
                offset=coordinates.offset,
            ) from exc

    def _decode(
        self, key: bytes | None, value: bytes, coordinates: KafkaCoordinates
    ) -> ChangeEvent:
        last = self._last.get(coordinates.topic)
        key_columns, key_schema = self._key_columns(key, last[3] if last is not None else None)
        if last is not None:
            # The topic's last schema again? Then the payload starts right after it: no search
            # through the (kilobytes of) schema for the payload mark.
            end = _SCHEMA_START + len(last[0])
            if (
                value.startswith(_PAYLOAD_MARK, end)
                and last[1] == key_columns
                # Compared in place: a slice would copy the (kilobytes of) schema per record.
                and value.startswith(last[0], _SCHEMA_START)
                and value.startswith(b'{"schema":')
            ):
                schema_bytes = last[0]
                payload_bytes = value[end + len(_PAYLOAD_MARK) : -1]
            else:
                last = None
        if last is not None:
            shape = last[2]
        else:
            schema_bytes, payload_bytes = _split(value)
            found = self._shapes.get(schema_bytes + b"|" + ",".join(key_columns).encode())
            shape = found or self._learn_shape(schema_bytes, key_columns)
            self._last[coordinates.topic] = (schema_bytes, key_columns, shape, key_schema)
        placeholder = _PLACEHOLDER in payload_bytes or _PLACEHOLDER_BASE64 in payload_bytes
        payload = jsonfast.loads(payload_bytes)
        op = _OPS[payload["op"]]
        source = payload["source"]
        tx = payload.get("transaction") or {}
        place = (source.get("schema") or source.get("db") or "", source.get("table") or "")
        table = self._tables.get(place)
        if table is None:
            table = self._tables[place] = TableId(self.source_name, *place)
        before = (
            shape.decode(payload["before"], op is Op.DELETE, placeholder)
            if payload.get("before") is not None
            else None
        )
        if before is not None and op is Op.DELETE and self.kind is SourceKind.POSTGRES:
            # Only the key of a PostgreSQL delete image is trustworthy (REPLICA IDENTITY DEFAULT fills
            # the rest with type defaults); the merge carries the closed version's values forward.
            before = {k: (v if k in shape.schema.key else None) for k, v in before.items()}
        after = (
            shape.decode(payload["after"], False, placeholder)
            if payload.get("after") is not None
            else None
        )
        unavailable: frozenset[str] = _NONE_UNAVAILABLE
        if placeholder:
            # `in` on the values is a C loop (identity first).
            if after is not None and UNAVAILABLE in after.values():
                # Unchanged TOAST columns: the merge carries the previous version's value forward.
                unavailable = frozenset(k for k, v in after.items() if v is UNAVAILABLE)
                for name in unavailable:
                    after[name] = None
            if before is not None and UNAVAILABLE in before.values():
                before = {k: (None if v is UNAVAILABLE else v) for k, v in before.items()}
        image = before if op is Op.DELETE else after
        row_key = shape.key_of(image) if image is not None else ()
        flag = source.get("snapshot")
        snapshot = flag is not None and (
            flag != "false" and str(flag).lower() not in ("false", "none", "")
        )
        # Positional (a hot path): table, op, key, before, after, position, commit_time, tx_id,
        # schema, kafka, snapshot, unavailable.
        return ChangeEvent(
            table,
            op,
            row_key,
            before,
            after,
            self._position(source, tx.get("total_order")),
            self._commit_time(source),
            self._tx_id(tx, source),
            shape.schema,
            coordinates,
            snapshot or op is Op.READ,
            unavailable,
        )

    def _tx_id(self, tx: dict[str, Any], source: dict[str, Any]) -> str | None:
        """One id per source transaction, equal on every event of it and on its BEGIN/END records."""
        raw = tx.get("id")
        if raw is not None:
            # Consecutive events mostly belong to one transaction: its id is derived once.
            if raw != self._last_tx[0]:
                self._last_tx = (raw, transaction_key(self.kind, str(raw)))
            return self._last_tx[1]
        return _source_tx_id(source)

    def _commit_time(self, source: dict[str, Any]) -> dt.datetime:
        """`commit_time`, derived once for consecutive events of one commit."""
        stamp = (source.get("ts_us"), source.get("ts_ms"))
        if stamp != self._last_commit[0]:
            self._last_commit = (stamp, commit_time(source))
        return self._last_commit[1]

    def _key_columns(
        self, key: bytes | None, last: bytes | None = None
    ) -> tuple[tuple[str, ...], bytes]:
        """Primary-key column names, from the record key's schema (cached by its bytes), and that
        schema's bytes.

        `last` is the key schema of the topic's last record: when the key starts with it, the key
        is neither searched nor sliced.
        """
        if not key:
            return (), b""
        if (
            last
            and key.startswith(last, _SCHEMA_START)
            and key.startswith(_PAYLOAD_MARK, _SCHEMA_START + len(last))
            and key.startswith(b'{"schema":')
        ):
            key_schema = last
        else:
            key_schema, _ = _split(key)
        names = self._keys.get(key_schema)
        if names is None:
            schema = jsonfast.loads(key_schema) or {}
            names = tuple(f["field"] for f in schema.get("fields") or [])
            self._keys[key_schema] = names
        return names, key_schema

    def _learn_shape(self, schema_bytes: bytes, key_columns: tuple[str, ...]) -> _RowShape:
        schema = jsonfast.loads(schema_bytes)
        fields = {f["field"]: f for f in schema["fields"]}
        row_struct = fields.get("after") or fields.get("before")
        if row_struct is None:
            raise ValueError("envelope schema has neither 'before' nor 'after'")
        columns, decode = row_decoder(row_struct["fields"], self.kind.value)
        shape = _RowShape(TableSchema(columns, key_columns), decode, _key_getter(key_columns))
        self._shapes[schema_bytes + b"|" + ",".join(key_columns).encode()] = shape
        return shape


def transaction_key(kind: SourceKind, debezium_id: str) -> str:
    """The stable id of a source transaction from Debezium's `transaction.id`.

    The PostgreSQL connector writes `"<xid>:<lsn>"` with the LSN of the record at hand, so the events of
    one transaction, its BEGIN and its END all carry different ids; the xid is what they share. MariaDB
    and MySQL ids (a GTID, or binlog file and position) are the same on all of them already.
    """
    if kind is SourceKind.POSTGRES:
        return debezium_id.split(":", 1)[0]
    return debezium_id


def _source_tx_id(source: dict[str, Any]) -> str | None:
    """A transaction id from the source block when transaction metadata is off."""
    for field in ("txId", "gtid"):
        if source.get(field) is not None:
            return str(source[field])
    return None
