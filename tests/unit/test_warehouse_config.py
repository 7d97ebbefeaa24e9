"""The `warehouse` section: a discriminated union on `kind`, secrets from a file or the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import PostgresWarehouse, SnowflakeWarehouse, load_config
from core.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cdchub.yaml"
    path.write_text(text)
    return path


def test_postgres_warehouse_reads_password_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "wh.pw").write_text("pw-from-file\n")
    config = load_config(
        write(
            tmp_path,
            "warehouse:\n  kind: postgres\n  port: 25432\n  database: cdchub_warehouse\n"
            "  user: cdchub_warehouse\n  password_file: wh.pw\n",
        )
    )
    assert isinstance(config.warehouse, PostgresWarehouse)
    assert config.warehouse.secret() == "pw-from-file"
    assert config.warehouse.password_file == tmp_path / "wh.pw"
    # status and demo lines name the warehouse without its secret
    assert config.warehouse.location == (
        "postgresql://cdchub_warehouse@127.0.0.1:25432/cdchub_warehouse"
    )


def test_snowflake_warehouse_password_from_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_PW", "s3cret")
    config = load_config(
        write(
            tmp_path,
            "warehouse:\n  kind: snowflake\n  account: xy123\n  user: hub\n"
            "  password: ${SF_PW}\n  database: analytics\n  schema: cdc\n",
        )
    )
    assert isinstance(config.warehouse, SnowflakeWarehouse)
    assert config.warehouse.schema_ == "cdc"
    assert config.warehouse.secret() == "s3cret"
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("kind: postgres\n  database: w\n  user: u\n", "password"),
        ("kind: postgres\n  database: w\n  user: u\n  password: x\n  path: a.db\n", "path"),
        ("kind: oracle\n", "kind"),
    ],
)
def test_invalid_warehouse_is_named(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, f"warehouse:\n  {body}"))


def _memory_limit_mib(config_text: str, tmp_path: Path) -> float:
    from connectors.warehouses.duckdb.client import DuckDBSession
    from core.config import DuckDBWarehouse

    config = load_config(write(tmp_path, config_text))
    assert isinstance(config.warehouse, DuckDBWarehouse)
    session = DuckDBSession.from_config(config.warehouse)
    try:
        (limit,) = session.conn.execute("SELECT current_setting('memory_limit')").fetchone() or (
            "",
        )
    finally:
        session.close()
    number, unit = str(limit).split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "TiB": 1024**2}[unit]


def test_duckdb_memory_is_capped_by_default_and_configurable(tmp_path: Path) -> None:
    wh = f"warehouse:\n  kind: duckdb\n  path: {tmp_path / 'wh.duckdb'}\n"
    # 192 MB (decimal) by default, which DuckDB shows as 183.1 MiB.
    assert 180 < _memory_limit_mib(wh, tmp_path) < 190
    assert _memory_limit_mib(wh + "  memory_limit: 1GiB\n", tmp_path) == 1024
    # null: DuckDB's own default (80% of the machine's memory), more than the cap.
    assert _memory_limit_mib(wh + "  memory_limit: null\n", tmp_path) > 190


def test_duckdb_checkpoints_at_64mb_of_wal_by_default(tmp_path: Path) -> None:
    from connectors.warehouses.duckdb.client import DuckDBSession
    from core.config import DuckDBWarehouse

    for extra, expected in (("", "61.0 MiB"), ("  checkpoint_threshold: 1GiB\n", "1.0 GiB")):
        text = f"warehouse:\n  kind: duckdb\n  path: {tmp_path / 'wh.duckdb'}\n{extra}"
        config = load_config(write(tmp_path, text))
        assert isinstance(config.warehouse, DuckDBWarehouse)
        session = DuckDBSession.from_config(config.warehouse)
        try:
            row = session.conn.execute("SELECT current_setting('checkpoint_threshold')").fetchone()
        finally:
            session.close()
        assert row == (expected,)


def test_a_memory_limit_that_is_not_a_size_is_a_one_line_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "warehouse:\n  kind: duckdb\n  memory_limit: lots\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "warehouse.duckdb.memory_limit" in message and "192MB" in message
    assert "\n" not in message


def test_work_beyond_duckdbs_memory_limit_spills_instead_of_failing(tmp_path: Path) -> None:
    from connectors.warehouses.duckdb.client import DuckDBSession

    session = DuckDBSession(tmp_path / "wh.duckdb", memory_limit="64MB")
    try:
        # A sort of ~300 MB of rows under a 64 MB cap: DuckDB spills to wh.duckdb.tmp.
        (rows,) = session.conn.execute(
            "SELECT count(*) FROM (SELECT i, repeat(i::TEXT, 20) AS s FROM range(2000000) t(i) "
            "ORDER BY s DESC)"
        ).fetchone() or (0,)
    finally:
        session.close()
    assert rows == 2_000_000
