"""`json_text` writes JSON columns exactly as the stdlib does (the form stored versions have),
whichever writer it takes: random documents, and the float and integer forms where orjson's
own text differs from the stdlib's."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

from cdc_consumers.converters.misc import json_text


def _stdlib(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _float(rng: random.Random) -> float:
    while True:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if not (math.isinf(value) or math.isnan(value)):
            return (
                value if rng.random() < 0.5 else float(f"{rng.random():.4f}e{rng.randint(-12, 20)}")
            )


def _document(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == 1:
        return _float(rng)
    if kind == 2:
        return "".join(
            rng.choice('ab é😀\n\t"\\\x00\x1f\x7f\u2028e-0.0000') for _ in range(rng.randrange(8))
        )
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return 2**70 * rng.choice([1, -1])  # past 64 bits: orjson cannot write it
    if kind == 5:
        return rng.choice([0.0, -0.0, 1e-5, -2.5e-7, 1e16, 0.0001])
    if kind in (6, 7):
        return {
            _document(rng, 3) if False else f"k{rng.randrange(50)}é": _document(rng, depth + 1)
            for _ in range(rng.randrange(5))
        }
    return [_document(rng, depth + 1) for _ in range(rng.randrange(5))]


def test_json_text_is_the_stdlib_text_of_random_documents() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        document = _document(rng)
        source = json.dumps(document, indent=rng.choice([None, 1]))  # PostgreSQL's jsonb has spaces
        assert json_text(source) == _stdlib(document), source


def test_json_text_of_the_forms_where_the_writers_differ() -> None:
    for text in (
        '{"a": 1e-05}',
        "[-2.5e-07, 0.00001]",
        '{"big": 123456789012345678901234567890}',
        '{"b": 1, "a": {"d": [1.5e+16, -0.0], "c": "x"}}',
        '"re-run"',
    ):
        assert json_text(text) == _stdlib(json.loads(text))
