"""Numbers: Connect ints and floats, exact decimals in every Debezium encoding, money.

Decimals never pass through a float. Three encodings arrive:
- `org.apache.kafka.connect.data.Decimal` (`decimal.handling.mode=precise`, MariaDB/MySQL):
  base64 big-endian two's-complement unscaled bytes, with `scale` in the schema parameters;
- `io.debezium.data.VariableScaleDecimal`: `{"scale", "value"}` with the same bytes;
- plain strings (`decimal.handling.mode=string`, PostgreSQL): the digits as text, and the special
  values as Java enum names (`NAN`, `POSITIVE_INFINITY`, `NEGATIVE_INFINITY`; docs/facts.md).
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from cdc_consumers.converters.base import Converter

# Debezium's spelling of PostgreSQL's special numeric values in `decimal.handling.mode=string`.
_SPECIAL = {
    "NAN": Decimal("NaN"),
    "NaN": Decimal("NaN"),
    "POSITIVE_INFINITY": Decimal("Infinity"),
    "Infinity": Decimal("Infinity"),
    "NEGATIVE_INFINITY": Decimal("-Infinity"),
    "-Infinity": Decimal("-Infinity"),
}


def decimal_text(value: Decimal) -> str:
    """The canonical text of a decimal: plain digits with the source's scale, or NaN/±Infinity.

    `format(d, "f")` never switches to exponent notation, so `0.0000001` stays as written.
    """
    return format(value, "f")


def parse_decimal_text(text: str) -> Decimal:
    """A decimal from `decimal.handling.mode=string` text, special values included."""
    special = _SPECIAL.get(text)
    return special if special is not None else Decimal(text)


def numeric_text(text: str) -> str:
    """PostgreSQL numeric sent as text → its canonical text (kept as text: it may be NaN/±Inf)."""
    return decimal_text(parse_decimal_text(text))


def fixed_decimal(scale: int) -> Converter:
    """Converter of Connect `Decimal` bytes with a fixed scale."""

    def convert(value: str) -> Decimal:
        unscaled = int.from_bytes(base64.b64decode(value), "big", signed=True)
        return exact_decimal(unscaled, scale)

    return convert


def variable_scale_decimal(value: dict[str, Any]) -> Decimal:
    """Converter of `io.debezium.data.VariableScaleDecimal` structs."""
    unscaled = int.from_bytes(base64.b64decode(value["value"]), "big", signed=True)
    return exact_decimal(unscaled, int(value["scale"]))


def exact_decimal(unscaled: int, scale: int) -> Decimal:
    """unscaled * 10^-scale, exactly. `Decimal.scaleb` would round to the context's 28 digits,
    silently losing digits of a DECIMAL(65,30)."""
    return Decimal(f"{unscaled}E{-scale}")


def to_float(value: float | int | str) -> float:
    """Floats: JSON cannot spell NaN/±Infinity, so Debezium sends them as the strings
    `NaN`, `Infinity`, `-Infinity`, which `float()` reads."""
    return float(value)
