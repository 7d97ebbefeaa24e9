"""Real sample databases (Pagila, Sakila, Northwind) loaded into the local stack as new databases.

`cdchub stack load-sample <name>` calls `load_sample`. Each sample has its own module with one job
(create the database from the dataset's SQL, add generated rows where the dataset is schema-only,
grant the CDC user, publish). `source_config` prints the `sources:` entry that replicates it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.config import HubConfig
from dbschemas import Progress
from dbschemas.samples import northwind, pagila, pgserver, sakila_mysql, sakila_pg
from dbschemas.samples.datasets import datasets_dir
from infrastructure.stack.layout import StackLayout


@dataclass(frozen=True)
class Sample:
    """One loadable sample: where it lives and how to load it."""

    name: str
    kind: str  # "postgres" | "mariadb"
    database: str
    load: Callable[[StackLayout, Path, Progress], list[str]]


SAMPLES: dict[str, Sample] = {
    "pagila": Sample("pagila", "postgres", pagila.DATABASE, pagila.load),
    "sakila-pg": Sample("sakila-pg", "postgres", sakila_pg.DATABASE, sakila_pg.load),
    "sakila-mysql": Sample("sakila-mysql", "mariadb", sakila_mysql.DATABASE, sakila_mysql.load),
    "northwind": Sample("northwind", "mariadb", northwind.DATABASE, northwind.load),
}


def load_sample(
    name: str, layout: StackLayout, datasets: Path, progress: Progress = print
) -> list[str]:
    """Load sample `name` into the local stack (idempotent); returns its captured tables.

    Raises:
        KeyError: unknown sample name.
        StackError: a server refused a statement.
    """
    sample = SAMPLES[name]
    return sample.load(layout, datasets, progress)


def source_entry(sample: Sample, layout: StackLayout, tables: list[str]) -> dict[str, object]:
    """The `sources:` entry that replicates a loaded sample from the local stack."""
    name = sample.name.replace("-", "_")
    ports = layout.config.stack.ports
    entry: dict[str, object] = {
        "name": name,
        "kind": sample.kind,
        "port": ports.postgres if sample.kind == "postgres" else ports.mariadb,
        "database": sample.database,
        "user": layout.pg_cdc.user if sample.kind == "postgres" else layout.mariadb_cdc.user,
        "password_file": str(
            layout.pg_cdc.password_file
            if sample.kind == "postgres"
            else layout.mariadb_cdc.password_file
        ),
        "tables": tables,
    }
    if sample.kind == "postgres":
        entry["publication_name"] = f"cdchub_{name}"
        generated = pgserver.generated_columns(layout, sample.database)
        if generated:
            entry["extra"] = {"column.exclude.list": ",".join(re.escape(c) for c in generated)}
        keyless = KEYLESS_KEYS.get(sample.name, {})
        if keyless:
            entry["key_columns"] = keyless
    else:
        entry["server_id"] = 184300 + sorted(SAMPLES).index(sample.name)
    return entry


# Key columns for sample tables without a primary key (they get REPLICA IDENTITY FULL).
KEYLESS_KEYS: dict[str, dict[str, list[str]]] = {
    "sakila-pg": {f"public.payment_p2007_0{i}": ["payment_id"] for i in range(1, 7)},
}


def load_sample_and_describe(
    config: HubConfig, name: str, datasets: str | None, progress: Progress = print
) -> str:
    """`cdchub stack load-sample`: load, then the YAML `sources:` entry to add to cdchub.yaml."""
    layout = StackLayout(config)
    tables = load_sample(name, layout, datasets_dir(datasets), progress)
    entry = source_entry(SAMPLES[name], layout, tables)
    return yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)
