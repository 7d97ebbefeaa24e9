"""JSON decoding for the hot path: orjson (a C parser, ~3x the stdlib), stdlib as the fallback.

orjson is stricter than `json` (it rejects `NaN`/`Infinity` literals and lone surrogate escapes).
Debezium's JSON converter does not write the former (float specials arrive as strings), and text
columns cannot hold the latter, but a record that orjson refuses is handed to the stdlib parser
rather than failing: the two agree on everything orjson accepts.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse one JSON document (bytes or text)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(bytes(data) if isinstance(data, memoryview) else data)
