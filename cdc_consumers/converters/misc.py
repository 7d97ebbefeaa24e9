"""Text-like and structured values: JSON, bits, geometry, binary."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from cdc_consumers import jsonfast
from cdc_consumers.converters.base import Converter


def b64(value: str) -> bytes:
    """bytes/bytea/BLOB: base64 in the JSON payload (`binary.handling.mode=base64`)."""
    return base64.b64decode(value)


def json_text(value: str) -> str:
    """JSON documents, compacted with sorted keys so equal documents compare equal."""
    # Parsed by orjson (it falls back to the stdlib for what it refuses), written by the stdlib so
    # the text stays exactly what it was (number forms such as 1e+16 included).
    return json.dumps(
        jsonfast.loads(value), separators=(",", ":"), ensure_ascii=False, sort_keys=True
    )


def bits(length: int | None, fixed: bool) -> Converter:
    """`io.debezium.data.Bits`: little-endian bytes → the bit string (`'1010'`).

    A fixed-length BIT(n) is padded to n digits. For PostgreSQL `varbit` the connector sends the
    maximum length only, so leading zeros cannot be told apart: the shortest digits are kept.
    """

    def convert(value: str) -> str:
        number = int.from_bytes(base64.b64decode(value), "little")
        digits = format(number, "b") if number else ""
        if fixed and length:
            return digits.zfill(length)
        return digits

    return convert


def mysql_geometry(value: dict[str, Any]) -> bytes:
    """MySQL/MariaDB GEOMETRY/POINT (`{wkb, srid}`) → the server's own storage format: a 4-byte
    little-endian SRID followed by the WKB (what `SELECT` returns), so it round-trips exactly."""
    srid = int(value.get("srid") or 0)
    return struct.pack("<I", srid) + base64.b64decode(value["wkb"])


def _pg_float(number: float) -> str:
    text = repr(float(number))
    return text[:-2] if text.endswith(".0") else text


def pg_point(value: dict[str, Any]) -> str:
    """PostgreSQL `point` (`{x, y, wkb}`) → its text form `(x,y)`."""
    return f"({_pg_float(value['x'])},{_pg_float(value['y'])})"
