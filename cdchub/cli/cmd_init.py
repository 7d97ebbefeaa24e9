"""`cdchub init` (scaffold a config) and `cdchub render-sql` (print one batch's SQL)."""

from __future__ import annotations

import click

from cdchub.cli.app import cli
from cdchub.cli.output import emit, guard, json_option, note, warehouse_kind_option


@cli.command()
@click.option(
    "--source",
    "specs",
    multiple=True,
    help="NAME=KIND://USER@HOST[:PORT]/DATABASE (KIND: postgres, mariadb, mysql); repeatable.",
)
@click.option("--tables", help="With one source: the tables to capture, comma-separated.")
@click.option("--kafka", default="127.0.0.1:29092", show_default=True, help="Bootstrap servers.")
@click.option(
    "--connect", default="http://127.0.0.1:28083", show_default=True, help="Kafka Connect URL."
)
@click.option("--output", "output", default="cdchub.yaml", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@json_option("Print {config, admin_sql} as JSON.")
@guard
def init(
    specs: tuple[str, ...],
    tables: str | None,
    kafka: str,
    connect: str,
    output: str,
    force: bool,
    as_json: bool,
) -> None:
    """Write a cdchub.yaml for the given sources and print the admin SQL they need."""
    from pathlib import Path

    from cdchub.scaffold import scaffold, write_config

    table_list = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
    text, sql = scaffold(list(specs), table_list, kafka, connect)
    path = Path(output)
    write_config(path, text, force)
    note(f"wrote {path}; run the SQL below as an admin, then `cdchub connectors apply`")
    if as_json:
        emit({"config": str(path), "admin_sql": [line for line in sql if line]})
    else:
        click.echo("\n".join(sql).rstrip())


@cli.command("render-sql")
@warehouse_kind_option()
@click.option("--table", "table", required=True, help="source.namespace.table or schema.table.")
@click.option("--columns", help='Instead of the demo schemas: "id:int64, price:decimal(12,2)".')
@click.option("--key", help="Key columns of --columns, comma-separated.")
@guard
def render_sql(kind: str, table: str, columns: str | None, key: str | None) -> None:
    """Print the statements of one batch for one table, rendered for a warehouse (no database)."""
    from cdchub.render_sql import render_plan
    from dbschemas.demo_tables import find_demo_table, parse_columns

    shape = parse_columns(table, columns, key or "") if columns else find_demo_table(table)
    click.echo(render_plan(kind, shape))
