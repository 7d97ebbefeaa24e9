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
