"""The `cdchub` group, its global options (`--config`, `--debug`, `--version`, `-h`) and `main`."""

from __future__ import annotations

import logging
import sys

import click

from cdchub import __version__
from cdchub.cli.output import CliContext


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="CDCHUB_CONFIG", help="Config file (cdchub.yaml).")
@click.option("--debug", is_flag=True, help="Print tracebacks and debug logs.")
@click.version_option(__version__, "--version", prog_name="cdchub")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """cdchub: Debezium CDC from PostgreSQL and MariaDB/MySQL into SCD2 warehouse tables."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    if not debug:
        # kafka-python logs every refused connection; cdchub reports an unreachable Kafka itself,
        # in one line, so its own warnings would only bury that line.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    ctx.obj = CliContext(config_path, debug)


_GLOBAL_FLAGS = {"--debug"}
_GLOBAL_VALUED = {"--config"}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move `--config PATH` / `--config=PATH` / `--debug` given after the subcommand to the front,
    so `cdchub verify --config x.yaml` works like `cdchub --config x.yaml verify`.

    Only these two names are moved (no subcommand has an option of that name); `--` ends the scan.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in _GLOBAL_FLAGS or any(arg.startswith(f"{n}=") for n in _GLOBAL_VALUED):
            front.append(arg)
        elif arg in _GLOBAL_VALUED and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:
    """Console-script entry point."""
    cli(args=hoist_global_options(sys.argv[1:]), prog_name="cdchub")
