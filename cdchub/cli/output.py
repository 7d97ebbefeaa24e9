"""What every command shares: the config context, stdout/stderr, one-line errors, exit codes."""

from __future__ import annotations

import datetime as dt
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from core.config import HubConfig, load_config
from core.errors import CdcHubError


class CliContext:
    def __init__(self, config_path: str | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._config: HubConfig | None = None

    @property
    def config(self) -> HubConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


def note(message: str) -> None:
    click.echo(message, err=True)


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=None, default=str))


def one_line(exc: BaseException) -> str:
    """An error as one line: typed errors say it all; others get their type and first line."""
    if isinstance(exc, CdcHubError):
        return " ".join(str(exc).split())
    first = (str(exc).strip().splitlines() or [""])[0].strip()
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print every error as one line (traceback with --debug) and exit 2 (README: errors)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context().find_object(CliContext)
        debug = ctx is not None and ctx.debug
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise  # usage errors: click prints them and exits 2
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if debug:
                traceback.print_exc()
            hint = "" if debug or isinstance(exc, CdcHubError) else " (--debug shows the traceback)"
            click.echo(f"error: {one_line(exc)}{hint}", err=True)
            sys.exit(2)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
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
