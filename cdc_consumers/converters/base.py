"""Shared pieces of the converters: the converter signature and Debezium's placeholders."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

Converter = Callable[[Any], Any]

# Debezium's placeholder for an unchanged TOASTed column (PostgreSQL, REPLICA IDENTITY DEFAULT).
# It arrives as this string for text-like columns, base64 of it for bytea, and a one-element array
# of it for arrays (docs/facts.md). Decoding turns it into a per-column "unavailable" marker; the
# merge carries the previous version's value forward (merge.plan.carry_unavailable).
UNAVAILABLE_VALUE = "__debezium_unavailable_value"
UNAVAILABLE_FORMS = (
    UNAVAILABLE_VALUE,
    base64.b64encode(UNAVAILABLE_VALUE.encode()).decode(),
)


def is_unavailable(raw: Any) -> bool:
    """True when a raw payload value is Debezium's unchanged-TOAST placeholder, in any form."""
    if isinstance(raw, str):
        return raw in UNAVAILABLE_FORMS
    if isinstance(raw, list) and len(raw) == 1:
        return raw[0] in UNAVAILABLE_FORMS
    return False


def identity(value: Any) -> Any:
    """The value as it arrived."""
    return value
