"""Debezium semantics on the real stack: unchanged TOAST values, key changes, TRUNCATE, key-less
tables. The oracle is the source database (verify) plus the history's own shape."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from connectors.service import apply_connectors
from core.config import HubConfig, SourceConfig
from core.errors import ConnectorError
from dbschemas.samples import pgserver
from tests.integration.conftest import Stack
from tests.integration.helpers import (
    failures,
    replicate_until_verified,
    run_until_idle,
    verify,
    with_warehouse,
)

DB = "semantics"
# Incompressible (hex of a multiplicative hash) and > 2 kB, so PostgreSQL stores it out of line.
BIG = "".join(f"{(i * 2654435761) % 4294967296:08x}" for i in range(600))
DDL = """
CREATE TABLE docs (id integer PRIMARY KEY, small integer, t text, j jsonb, b bytea, a text[]);
CREATE TABLE nokey (a integer, b text);
ALTER TABLE nokey REPLICA IDENTITY FULL;
"""


def _source(stack: Stack, **extra: object) -> SourceConfig:
    return SourceConfig(
        name="semantics",
        kind="postgres",
        port=stack.config.stack.ports.postgres,
        database=DB,
        user=stack.layout.pg_cdc.user,
        password_file=stack.layout.pg_cdc.password_file,
        **extra,  # type: ignore[arg-type]
    )


def _sql(stack: Stack, script: str) -> None:
    pgserver.run_script(stack.layout, DB, script)


def _history(path: Path, table: str) -> list[tuple[object, ...]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(
            f'SELECT * EXCLUDE (_cdc_ingested_at) FROM "semantics"."{table}_history" '
            "ORDER BY _cdc_source_pos"
        ).fetchall()
    finally:
        conn.close()


def test_toast_key_change_truncate_and_keyless(stack: Stack, tmp_path: Path) -> None:
    pgserver.recreate_database(stack.layout, DB)
    _sql(stack, DDL)
    row = (
        f"(1, 1, '{BIG}', jsonb_build_object('k', '{BIG}'), convert_to('{BIG}', 'UTF8'), "
        f"ARRAY['{BIG}', NULL])"
    )
    _sql(stack, f"INSERT INTO docs VALUES {row}, (2, 1, 'x', '{{}}', '\\x00', '{{}}');")
    _sql(stack, "INSERT INTO nokey VALUES (1, 'a'), (2, 'b');")
    pgserver.grant_and_publish(stack.layout, DB, "cdchub_semantics")

    # A key-less table is refused with instructions until its key is configured.
    with pytest.raises(ConnectorError, match=r"public\.nokey.*key_columns"):
        apply_connectors(
            stack.config.model_copy(update={"sources": [_source(stack)]}), progress=print
        )
    source = _source(stack, key_columns={"public.nokey": ["a"]})
    warehouse = tmp_path / "warehouse-semantics.duckdb"
    config: HubConfig = with_warehouse(stack.config, warehouse, "it-semantics")
    config = config.model_copy(update={"sources": [source]})
    apply_connectors(config, progress=print)
    report = replicate_until_verified(config)
    assert report["ok"], json.dumps(failures(report), default=str)[:4000]

    _sql(
        stack,
        "UPDATE docs SET small = 2 WHERE id = 1;"  # TOAST columns unchanged: placeholders
        "UPDATE docs SET small = 3, t = 'short' WHERE id = 1;"
        "UPDATE docs SET small = 4 WHERE id = 1;"
        "UPDATE docs SET id = 3 WHERE id = 2;"  # key change: delete 2 + create 3, one commit
        "UPDATE nokey SET b = 'c' WHERE a = 1; DELETE FROM nokey WHERE a = 2;",
    )
    run_until_idle(config)
    report = verify(config)
    assert report["ok"], json.dumps(failures(report), default=str)[:4000]

    history = _history(warehouse, "docs")
    assert "__debezium_unavailable_value" not in repr(history)
    doc1 = [h for h in history if h[0] == 1]
    assert [h[1] for h in doc1] == [1, 2, 3, 4]
    assert [h[2] for h in doc1] == [BIG, BIG, "short", "short"]
    assert all(h[4] == BIG.encode() and h[5] == [BIG, None] for h in doc1)
    old, new = [h for h in history if h[0] == 2], [h for h in history if h[0] == 3]
    # columns: id, small, t, j, b, a, valid_from, valid_to, is_current, is_deleted, op, pos, tx
    assert old[-1][10] == "d" and old[-1][8] and new[0][10] == "c"
    assert old[-1][6] == new[0][6]  # closed and opened at the same commit
    assert old[-2][7] == old[-1][6]

    _sql(stack, "TRUNCATE docs;")
    run_until_idle(config)
    report = verify(config)
    assert report["ok"], json.dumps(failures(report), default=str)[:4000]
    history = _history(warehouse, "docs")
    truncated = [h for h in history if h[10] == "t"]
    assert {h[0] for h in truncated} == {1, 3}  # every live key closed
    assert len({h[6] for h in truncated}) == 1  # at the truncate's commit time
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert conn.execute('SELECT count(*) FROM "semantics"."docs"').fetchone() == (0,)
        nokey = conn.execute('SELECT a, b FROM "semantics"."nokey" ORDER BY a').fetchall()
    finally:
        conn.close()
    assert nokey == [(1, "c")]
