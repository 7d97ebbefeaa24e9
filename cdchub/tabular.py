"""Query results on stdout or in a file: a rich table, one JSON document, CSV/TSV, or Parquet.

Every format keeps a value whole: CSV and TSV quote a field holding the delimiter, a quote or a line
break (so a `notes` column with newlines stays one record); JSON is one document, an array of one
object per row; Parquet keeps the column types (decimals, instants, lists) through pyarrow.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import sys
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from core.errors import ConfigError

if TYPE_CHECKING:  # imported where used: its libraries are ~50 MB of a process's resident memory
    import pyarrow as pa

FORMATS = ("table", "json", "csv", "tsv", "parquet")


def text_value(value: Any) -> str:
    """A value as text for a table or a CSV field (NULL as the empty string)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | dict):
        return json.dumps(value, default=json_value, ensure_ascii=False)
    return str(value)


def json_value(value: Any) -> Any:
    """A JSON-able value: decimals as strings (every digit kept), instants in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


def unique_names(columns: Sequence[str]) -> list[str]:
    """Column names made unique for JSON objects (`id`, `id` → `id`, `id_2`)."""
    seen: dict[str, int] = {}
    out = []
    for name in columns:
        count = seen.get(name, 0) + 1
        seen[name] = count
        out.append(name if count == 1 else f"{name}_{count}")
    return out


def _arrow_column(values: list[Any]) -> pa.Array:
    """A typed Arrow column; values pyarrow cannot type (UUIDs, mixed JSON) become text."""
    import pyarrow as pa

    if any(isinstance(v, uuid.UUID) for v in values):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if v is None else text_value(v) for v in values], type=pa.string())


def arrow_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """The rows as an Arrow table, one typed column per result column."""
    import pyarrow as pa

    names = unique_names(columns)
    arrays = [_arrow_column([row[i] for row in rows]) for i in range(len(names))]
    return pa.Table.from_arrays(arrays, names=names)


def _delimited(columns: Sequence[str], rows: Sequence[Sequence[Any]], delimiter: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([text_value(v) for v in row])
    return buffer.getvalue()


def render_text(fmt: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The rows in a text format (`json`, `csv`, `tsv`)."""
    if fmt == "json":
        names = unique_names(columns)
        doc = [dict(zip(names, row, strict=True)) for row in rows]
        return json.dumps(doc, default=json_value, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _delimited(columns, rows, ",")
    if fmt == "tsv":
        return _delimited(columns, rows, "\t")
    raise ConfigError(f"format {fmt!r} is not a text format")


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], out: IO[str] | None = None
) -> None:
    """A rich table (a cell's line breaks stay inside its cell)."""
    from rich.console import Console
    from rich.table import Table

    stream = out or sys.stdout
    grid = Table(show_header=True, header_style="bold", show_lines=False)
    for name in columns:
        grid.add_column(name, overflow="fold")
    for row in rows:
        grid.add_row(*(text_value(v) for v in row))
    Console(file=stream, soft_wrap=False).print(grid)


def default_format(stream: IO[str] | None = None) -> str:
    """`table` on a terminal; `csv` when piped or redirected (a drawn table is not data)."""
    stream = stream or sys.stdout
    return "table" if stream.isatty() else "csv"


def write_result(
    fmt: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    output: Path | None = None,
) -> None:
    """Write rows in `fmt` to `output`, or to stdout.

    Raises:
        ConfigError: `parquet` without `--output` (binary data is not written to a terminal).
    """
    if fmt == "parquet":
        if output is None:
            raise ConfigError("--format parquet needs --output FILE")
        import pyarrow.parquet as pq

        pq.write_table(arrow_table(columns, rows), output)
        return
    if fmt == "table":
        if output is None:
            print_table(columns, rows)
        else:
            with output.open("w", encoding="utf-8") as handle:
                print_table(columns, rows, handle)
        return
    text = render_text(fmt, columns, rows)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text, encoding="utf-8")
