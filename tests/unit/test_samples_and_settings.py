"""Connector settings that decide type representations, the datasets lookup, the Pagila adaptation
and verify's normalisation of text-held values (no servers)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.debezium import connector_config
from core.config import HubConfig, SourceConfig
from core.errors import ConfigError
from dbschemas.samples import pagila, rows
from dbschemas.samples.datasets import ENV_VAR, datasets_dir
from ops.verify import normalize


def _hub(*sources: SourceConfig) -> HubConfig:
    return HubConfig.model_validate({"sources": [s.model_dump() for s in sources]})


def _source(kind: str, **extra: object) -> SourceConfig:
    return SourceConfig(
        name="s",
        kind=kind,
        port=1,
        database="d",
        user="u",
        password="p",
        **extra,  # type: ignore[arg-type]
    )


def test_postgres_connector_keeps_nan_and_intervals() -> None:
    source = _source("postgres", key_columns={"public.nokey": ["a", "b"]})
    config = connector_config(source, _hub(source))
    assert config["decimal.handling.mode"] == "string"  # precise stops the connector on NaN
    assert config["interval.handling.mode"] == "string"
    assert config["column.propagate.source.type"] == ".*"
    assert config["message.key.columns"] == "public\\.nokey:a,b"


def test_mariadb_connector_keeps_unsigned_and_old_years() -> None:
    source = _source("mariadb")
    config = connector_config(source, _hub(source))
    assert config["decimal.handling.mode"] == "precise"
    assert config["bigint.unsigned.handling.mode"] == "precise"
    assert config["enable.time.adjuster"] == "false"


def test_datasets_dir_option_env_and_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert datasets_dir(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert datasets_dir() == tmp_path.resolve()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="CDCHUB_DATASETS"):
        datasets_dir()


def test_pagila_adaptation_targets_postgres_15() -> None:
    script = (
        "    uuid uuid DEFAULT uuidv7() NOT NULL\n"
        "    x numeric(4,2) GENERATED ALWAYS AS (round(length / 60.0, 2)) VIRTUAL\n"
        "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\n"
        "    embedding public.vector(20) NOT NULL,\n"
        "CREATE INDEX i ON public.film_embedding USING hnsw (embedding public.vector_cosine_ops);\n"
        "ALTER TABLE public.actor OWNER TO postgres;\n"
    )
    adapted = pagila.adapt(script)
    assert "gen_random_uuid()" in adapted and "uuidv7" not in adapted
    assert ") STORED" in adapted and "VIRTUAL" not in adapted
    assert "vector" not in adapted.replace("embedding", "") and "real[]" in adapted
    assert "OWNER TO" not in adapted


def test_generated_rows_are_deterministic_and_fk_consistent() -> None:
    first, second = rows.generate(3), rows.generate(3)
    assert first == second
    ids = {t: {next(iter(r.values())) for r in first[t]} for t in first}
    assert all(r["city_id"] in ids["city"] for r in first["address"])
    assert all(r["inventory_id"] in ids["inventory"] for r in first["rental"])
    assert all(r["rental_id"] in ids["rental"] for r in first["payment"])
    assert all(r["manager_staff_id"] in ids["staff"] for r in first["store"])


@pytest.mark.parametrize(
    "source,warehouse",
    [
        (Decimal("4.99"), "4.99"),
        (Decimal("NaN"), "NaN"),
        (Decimal("-0.0000001"), "-0.0000001"),
        (b"\x02\xaa", "1010101010"),  # MySQL BIT(10) vs the bit string
        ("P-1DT-1S", "P0Y0M-1DT0H0M-1S"),  # PostgreSQL iso_8601 vs Debezium
        (
            dt.time(13, 14, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "11:14:15.123456Z",
        ),
    ],
)
def test_verify_compares_text_held_values(source: object, warehouse: str) -> None:
    assert normalize(source, "VARCHAR") == normalize(warehouse, "VARCHAR")


@pytest.mark.parametrize(
    "source,warehouse",
    [(Decimal("4.99"), "4.98"), ("P1M", "P30D"), (b"\x01", "10"), ("abc", "abd")],
)
def test_verify_still_tells_different_values_apart(source: object, warehouse: str) -> None:
    assert normalize(source, "VARCHAR") != normalize(warehouse, "VARCHAR")


def test_verify_nan_floats_compare_equal() -> None:
    assert normalize(float("nan"), "DOUBLE") == normalize(float("nan"), "DOUBLE")
