"""Real sample databases replicated whole: snapshot, a random change stream, then verify exact.

The oracle is the source database itself (`verify` reads every table back from it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.service import apply_connectors
from core.config import HubConfig, SourceConfig
from dbschemas.samples import SAMPLES, load_sample, source_entry
from dbschemas.samples.churn import churn
from dbschemas.samples.datasets import datasets_dir
from tests.integration.conftest import Stack
from tests.integration.helpers import (
    failures,
    replicate_until_verified,
    run_until_idle,
    verify,
    with_warehouse,
)

# The datasets ship with the repository (dbschemas/datasets), so this never depends on the machine.
DATASETS: Path = datasets_dir()


def _sample_config(stack: Stack, name: str, warehouse: Path) -> tuple[HubConfig, list[str]]:
    sample = SAMPLES[name]
    tables = load_sample(name, stack.layout, DATASETS, progress=print)
    # Idempotent: a second load changes nothing and returns the same tables.
    assert load_sample(name, stack.layout, DATASETS, progress=print) == tables
    source = SourceConfig.model_validate(source_entry(sample, stack.layout, tables))
    config = with_warehouse(stack.config, warehouse, f"it-sample-{name}")
    return config.model_copy(update={"sources": [source]}), tables


@pytest.mark.parametrize("name", ["pagila", "northwind", "sakila-mysql", "sakila-pg"])
def test_sample_replicates_whole(stack: Stack, tmp_path: Path, name: str) -> None:
    config, tables = _sample_config(stack, name, tmp_path / f"warehouse-{name}.duckdb")
    apply_connectors(config, progress=print)

    report = replicate_until_verified(config, timeout=400)
    assert report["ok"], json.dumps(failures(report), default=str)[:4000]
    verified = {t["table"] for t in report["tables"]}
    nonempty = {t["table"] for t in report["tables"] if t["source_rows"] > 0}
    assert nonempty, report
    # Every captured table is either verified equal or empty at the source (and then absent).
    assert verified <= set(tables)

    sample = SAMPLES[name]
    outcome = churn(stack.layout, sample.kind, sample.database, changes=300, seed=11)
    applied = sum(n for k, n in outcome.items() if k in ("insertd", "updated", "deleted"))
    assert applied > 100, outcome
    run_until_idle(config, idle=5)
    report = verify(config)
    assert report["ok"], json.dumps(failures(report), default=str)[:4000]
    assert all(t["ok"] for t in report["tables"])
