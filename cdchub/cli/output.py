"""What every command shares: the config context, stdout/stderr, one-line errors, exit codes."""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from core.config import HubConfig, load_config
from core.errors import CdcHubError

# Exit codes (README: "Exit codes"): every command ends with one of these.
EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # the command ran and found something that needs a person
EXIT_USAGE = 2  # bad usage or config, or an error that stopped the command

JSON_HELP = "Print one JSON document on stdout (messages go to stderr)."


def json_option(help: str = JSON_HELP) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The `--json` flag of a reporting command (its parameter is `as_json`)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def warehouse_kind_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--warehouse` (its parameter is `kind`): one of the registered warehouse kinds, the first
    by default (`bench merge`, `render-sql`)."""
    from connectors.warehouses import kinds

    return click.option(
        "--warehouse",
        "kind",
        type=click.Choice(kinds()),
        default=kinds()[0],
        show_default=True,
    )


class CliContext:
    """What the group hands its commands: the config (loaded on first use) and --debug."""

    def __init__(self, config_path: str | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._config: HubConfig | None = None

    @property
    def config(self) -> HubConfig:
        """The loaded config (a ConfigError when it is missing or invalid)."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


def note(message: str) -> None:
    """A message for the person: stderr, so stdout holds only data."""
    click.echo(message, err=True)


def emit(data: Any) -> None:
    """The command's one JSON document, on stdout."""
    click.echo(json.dumps(data, indent=None, default=str))


def one_line(exc: BaseException) -> str:
    """An error as one line: typed errors say it all; others get their type and first line."""
    if isinstance(exc, CdcHubError):
        return " ".join(str(exc).split())
    first = (str(exc).strip().splitlines() or [""])[0].strip()
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def emit_error(message: str, exit_code: int = EXIT_USAGE) -> None:
    """Under --json, an error is the command's one document too: `{ok, error, exit_code}`."""
    emit({"ok": False, "error": message, "exit_code": exit_code})


def guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print every error as one line (traceback with --debug) and exit 2 (README: errors).

    Under `--json` the same line also goes to stdout as the command's one JSON document, so a
    script reading stdout always gets exactly one document.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context().find_object(CliContext)
        debug = ctx is not None and ctx.debug
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except click.ClickException as exc:
            if as_json:
                emit_error(exc.format_message(), exc.exit_code)
            raise  # usage errors: click prints them and exits 2
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if debug:
                traceback.print_exc()
            hint = "" if debug or isinstance(exc, CdcHubError) else " (--debug shows the traceback)"
            click.echo(f"error: {one_line(exc)}{hint}", err=True)
            if as_json:
                emit_error(one_line(exc))
            sys.exit(EXIT_USAGE)

    return wrapper


def open_reader_or_none(config: HubConfig) -> Any:
    """A read-only warehouse reader (directly, or through the run that holds DuckDB), or None."""
    from ops.access import open_reader

    try:
        return open_reader(config)
    except CdcHubError as exc:
        note(f"warning: cannot read the warehouse: {exc}")
        return None


def parse_instant_option(text: str, option: str) -> dt.datetime:
    """An instant given to OPTION (ISO 8601 or `now`); a bad one is a usage error."""
    from ops.history import parse_instant

    return parse_instant(text, option)
