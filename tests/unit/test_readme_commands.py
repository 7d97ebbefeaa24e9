"""The README's command table agrees with the CLI, and every row has a test that runs it.

- every option a row shows exists on that command, and every option of a command is in its row;
- every command of the CLI has a row;
- docs/commands.md maps every row (by its commands) to the tests that run it as written, and each
  named test exists and does run that command (its body, or helpers of its file it calls, spell
  the command words).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from cdchub.cli import cli

REPO = Path(__file__).resolve().parents[2]
GLOBAL = {"--config", "--debug", "--help", "-h", "--version"}
_TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


@dataclass(frozen=True)
class Row:
    """One README command-table row: its first cell's command forms and the whole row's text."""

    line: str
    forms: tuple[str, ...]

    @property
    def key(self) -> str:
        """The row's first command form (its test id)."""
        return self.forms[0]


def readme_rows() -> list[Row]:
    rows = []
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("| `cdchub "):
            first = line[2:].split(" | ", 1)[0]
            forms = tuple(f.replace("\\|", "|") for f in re.findall(r"`([^`]*)`", first))
            rows.append(Row(line, forms))
    return rows


def leaf_commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> dict[tuple[str, ...], click.Command]:
    out: dict[tuple[str, ...], click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out |= leaf_commands(command, (*prefix, name))
        else:
            out[(*prefix, name)] = command
    return out


def command_paths(form: str) -> list[tuple[str, ...]]:
    """`cdchub connectors pause|resume [--source S]` -> [("connectors", "pause"), ("connectors", "resume")]."""
    words = form.split()
    if words[0] == "cdchub":
        words = words[1:]
    node: click.Command = cli
    paths: list[tuple[str, ...]] = [()]
    while words and isinstance(node, click.Group):
        names = words[0].split("|")
        if not all(n in node.commands for n in names):
            break
        paths = [(*p, n) for p in paths for n in names]
        node = node.commands[names[0]]
        words = words[1:]
    return paths


def options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


COMMANDS = leaf_commands(cli)
ROWS = readme_rows()


def test_the_readme_has_a_command_table() -> None:
    assert len(ROWS) >= 20
    assert all(row.forms for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r.key for r in ROWS])
def test_every_option_of_a_row_exists_and_every_option_is_in_its_row(row: Row) -> None:
    row_options = set(re.findall(r"--[a-z][a-z-]*", row.line))
    for form in row.forms:
        for path in command_paths(form):
            assert path in COMMANDS, f"README row {form!r}: no command {' '.join(path)!r}"
            have = options(COMMANDS[path])
            shown = set(re.findall(r"--[a-z][a-z-]*", form)) - GLOBAL
            assert shown <= have, f"{' '.join(path)}: README shows {sorted(shown - have)}"
            assert have - {"--help"} <= row_options, (
                f"{' '.join(path)}: options not in its README row {sorted(have - row_options)}"
            )


def test_every_command_has_a_readme_row() -> None:
    documented = {p for row in ROWS for form in row.forms for p in command_paths(form)}
    missing = sorted(" ".join(p) for p in set(COMMANDS) - documented)
    assert not missing, f"commands without a README row: {missing}"


def _paths(forms: tuple[str, ...] | list[str]) -> frozenset[tuple[str, ...]]:
    return frozenset(p for form in forms for p in command_paths(form))


def _audit() -> dict[frozenset[tuple[str, ...]], list[tuple[str, str]]]:
    """docs/commands.md: the commands of a README row -> the tests that run them."""
    out: dict[frozenset[tuple[str, ...]], list[tuple[str, str]]] = {}
    for line in (REPO / "docs" / "commands.md").read_text().splitlines():
        if not line.startswith("| `cdchub "):
            continue
        first, rest = line[2:].split(" | ", 1)
        forms = [f.replace("\\|", "|") for f in re.findall(r"`([^`]*)`", first)]
        out[_paths(forms)] = _TEST_ID.findall(rest)
    return out


def _function_sources(path: Path, name: str) -> list[str]:
    """The source of test `name` in `path`, and of the module-level functions of that file it calls."""
    text = path.read_text()
    tree = ast.parse(text)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if name not in functions:
        return []
    test = functions[name]
    called = {
        node.func.id
        for node in ast.walk(test)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    return [ast.get_source_segment(text, test) or ""] + [
        ast.get_source_segment(text, functions[c]) or "" for c in called if c in functions
    ]


@pytest.mark.parametrize("row", ROWS, ids=[r.key for r in ROWS])
def test_every_row_has_a_test_that_runs_it(row: Row) -> None:
    audit = _audit()
    paths = _paths(row.forms)
    assert paths in audit, f"docs/commands.md has no row for {row.key!r}"
    tests = audit[paths]
    assert tests, f"docs/commands.md names no test for {row.key!r}"
    for path in paths:
        words = [f'"{w}"' for w in path]
        ran_by = [
            f"{file}::{name}"
            for file, name in tests
            if all(w in "\n".join(_function_sources(REPO / file, name)) for w in words)
        ]
        assert ran_by, f"no test named for {row.key!r} runs `cdchub {' '.join(path)}`"
    for file, name in tests:
        assert _function_sources(REPO / file, name), f"{file}::{name} does not exist"
