"""verify's normalisation treats PostgreSQL's jsonb text like JSON (key order and spacing differ)."""

from __future__ import annotations

from ops.verify import normalize


def test_jsonb_text_compares_as_a_document() -> None:
    from_postgres_warehouse = '{"b": [1, 2], "a": {"é": null}}'
    from_decoder = '{"a":{"é":null},"b":[1,2]}'
    assert normalize(from_postgres_warehouse, "jsonb") == normalize(from_decoder, "JSON")
    assert normalize('{"a": 1}', "jsonb") != normalize('{"a": 2}', "JSON")
