"""The `cdchub` command line, one module per job.

`app` holds the group and its global options, `output` what every command shares (stdout/stderr,
one-line errors, exit codes); each `cmd_*` module registers its commands on the group on import.
"""

from __future__ import annotations

from cdchub.cli import (  # noqa: F401  (imported to register their commands)
    cmd_bench,
    cmd_connectors,
    cmd_init,
    cmd_inspect,
    cmd_repair,
    cmd_run,
    cmd_sql,
    cmd_stack,
)
from cdchub.cli.app import cli, hoist_global_options, main

__all__ = ["cli", "hoist_global_options", "main"]
