"""SQL over history: `sql`, `asof`, `views`, `dbt-sources`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cdchub.cli.app import cli
from cdchub.cli.output import CliContext, emit, guard, json_option, note, parse_instant_option
from cdchub.tabular import FORMATS

_FORMAT_HELP = (
    "table (default on a terminal), csv (default when piped), tsv, json (one document), "
    "parquet (needs --output)."
)


@cli.command()
@click.argument("table")
@click.option(
    "--at",
    "at",
    required=True,
    help="The instant: ISO 8601 (2026-11-25T18:00:00Z; no zone means UTC) or `now`.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help=_FORMAT_HELP)
@json_option("Same as --format json: one JSON document.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@click.option(
    "--limit", type=click.IntRange(min=0), default=None, help="Print at most N rows (N >= 0)."
)
@click.pass_obj
@guard
def asof(
    obj: CliContext,
    table: str,
    at: str,
    fmt: str | None,
    as_json: bool,
    output: Path | None,
    limit: int | None,
) -> None:
    """Print the rows TABLE held at an instant, from its history (e.g. `asof shop.orders --at …`)."""
    from cdchub.query import warn_before_history
    from cdchub.tabular import default_format, write_result
    from ops.access import open_reader
    from ops.history import find_table, rows_as_of

    instant = parse_instant_option(at, "--at")
    if as_json and fmt not in (None, "json"):
        raise click.UsageError("--json and --format disagree; give one")
    fmt = "json" if as_json else fmt or default_format()
    session = open_reader(obj.config)
    try:
        found = find_table(session, table)  # type: ignore[arg-type]
        columns, rows = rows_as_of(session, found, instant)  # type: ignore[arg-type]
        warn_before_history(session, [found.names], instant, note)  # type: ignore[arg-type]
    finally:
        session.close()
    rows = rows[:limit] if limit is not None else rows
    write_result(fmt, columns, rows, output)
    note(f"{len(rows)} rows of {table} as of {instant.isoformat()}")


@cli.command()
@click.argument("query", required=False)
@click.option(
    "--file",
    "query_file",
    type=click.File("r", encoding="utf-8"),
    help="Read the query from FILE (`-` for stdin), e.g. one that starts with a `--` comment.",
)
@click.option(
    "--as-of",
    "as_of",
    help="Read every replicated table as it was at this instant (ISO 8601 or `now`).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help=_FORMAT_HELP)
@json_option("Same as --format json: one JSON document.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@click.option("--show-sql", is_flag=True, help="Print the SQL sent to the warehouse on stderr.")
@click.pass_obj
@guard
def sql(
    obj: CliContext,
    query: str | None,
    query_file: Any,
    as_of: str | None,
    fmt: str | None,
    as_json: bool,
    output: Path | None,
    show_sql: bool,
) -> None:
    """Run one read-only SELECT on the warehouse, optionally as of an instant (`--as-of`).

    Works while `cdchub run` holds the DuckDB file: the run answers the query. A query that starts
    with `-` (a `--` comment) goes after `--` or in --file.
    """
    from cdchub.query import run_sql
    from cdchub.tabular import default_format, write_result
    from ops.access import open_reader

    if (query is None) == (query_file is None):
        raise click.UsageError("give the query as an argument or with --file (one of them)")
    query = query if query is not None else query_file.read()
    assert query is not None

    instant = parse_instant_option(as_of, "--as-of") if as_of else None
    if as_json and fmt not in (None, "json"):
        raise click.UsageError("--json and --format disagree; give one")
    fmt = "json" if as_json else fmt or default_format()
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs --output FILE")
    session = open_reader(obj.config)
    try:
        result = run_sql(session, query, instant, warn=note)  # type: ignore[arg-type]
    finally:
        session.close()
    if show_sql:
        note(result.sql)
    write_result(fmt, result.columns, result.rows, output)
    note(f"{len(result.rows)} rows" + (f" as of {instant.isoformat()}" if instant else ""))


@cli.command()
@click.option("--drop", is_flag=True, help="Remove the views instead.")
@json_option("Print {action, views} (created or dropped) as one JSON document.")
@click.pass_obj
@guard
def views(obj: CliContext, drop: bool, as_json: bool) -> None:
    """Create the `<table>_versions` and `<table>_changes` views of every replicated table."""
    from cdchub.analytics import create_views
    from connectors.warehouses import open_session

    session = open_session(obj.config)  # writes DDL: on DuckDB, stop `cdchub run` first
    try:
        names = create_views(session, drop=drop)
    finally:
        session.close()
    if as_json:
        emit({"action": "dropped" if drop else "created", "views": names})
    else:
        for name in names:
            click.echo(name)
    note(f"{'dropped' if drop else 'created'} {len(names)} views")


@cli.command("dbt-sources")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@click.pass_obj
@guard
def dbt_sources(obj: CliContext, output: Path | None) -> None:
    """Write a dbt sources.yml for the replicated tables (freshness from the lag SLO)."""
    from cdchub.analytics import dbt_sources_yaml
    from ops.access import open_reader

    session = open_reader(obj.config)
    try:
        text = dbt_sources_yaml(obj.config, session)
    finally:
        session.close()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        note(f"wrote {output}")
    if obj.config.observability.freshness_slo_s is None and not (
        obj.config.observability.freshness_slo_per_table_s
    ):
        note("note: no observability.freshness_slo_s in the config, so no freshness thresholds")
