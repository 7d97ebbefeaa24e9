"""Config loading: env expansion, path resolution and errors that name the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config
from core.errors import ConfigError

BASE = """
sources:
  - name: shop
    kind: postgres
    port: 5432
    database: shop
    user: reader
    password: ${SHOP_PW}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cdchub.yaml"
    path.write_text(text)
    return path


def test_env_reference_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_PW", "s3cret")
    config = load_config(write(tmp_path, BASE))
    assert config.sources[0].secret() == "s3cret"
    assert config.warehouse.path == tmp_path / ".cdchub" / "warehouse.duckdb"
    assert "s3cret" not in repr(config)


def test_missing_env_var_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_PW", raising=False)
    with pytest.raises(ConfigError, match=r"SHOP_PW is not set.*sources\[0\]\.password"):
        load_config(write(tmp_path, BASE))


def test_misspelt_key_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_PW", "x")
    with pytest.raises(ConfigError, match=r"sources\.0\.databse"):
        load_config(write(tmp_path, BASE.replace("database:", "databse:")))


def test_bad_source_name_and_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_PW", "x")
    with pytest.raises(ConfigError, match=r"sources\.0\.name"):
        load_config(write(tmp_path, BASE.replace("name: shop", "name: Shop-1")))
    with pytest.raises(ConfigError, match=r"sources\.0\.kind"):
        load_config(write(tmp_path, BASE.replace("kind: postgres", "kind: oracle")))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_repo_default_config_is_valid() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "cdchub.yaml")
    assert [s.name for s in config.sources] == ["shop", "inventory"]


def test_duckdb_file_named_like_a_source_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_PW", "x")
    text = BASE + "warehouse:\n  kind: duckdb\n  path: shop.duckdb\n"
    with pytest.raises(ConfigError, match="named like the source 'shop'"):
        load_config(write(tmp_path, text))
