"""The consumer's hot-path dependencies are the C ones (issue 9: pure-Python CRC32C cost 19-61%)."""

from __future__ import annotations

import json

import crc32c
import kafka.record.util as kafka_util

from cdc_consumers import jsonfast


def test_kafka_python_checks_crc32c_in_c() -> None:
    # kafka-python picks the `crc32c` package at import time; the pure-Python one is the fallback.
    assert kafka_util._crc32c is crc32c.crc32c
    assert kafka_util.calc_crc32c(b"123456789") == 0xE3069283  # RFC 3720 check value


def test_jsonfast_matches_stdlib_and_falls_back() -> None:
    doc = b'{"a": [1, -9223372036854775808, 1.5e-10, "\\ud83d\\ude00 \\u00fc"], "b": null}'
    assert jsonfast.loads(doc) == json.loads(doc)
    # orjson refuses NaN literals and lone surrogates; the stdlib parser takes them.
    assert jsonfast.loads(b'{"x": NaN}')["x"] != jsonfast.loads(b'{"x": NaN}')["x"]
    assert jsonfast.loads(b'"\\ud800"') == "\ud800"
