"""`cdchub dlq`: list, show, retry and skip dead letters (see merge.dead_letters).

Reads go through `open_reader` (directly, or through the running hub that holds a DuckDB file);
decisions (retry, skip) are written by this process, or handed to the running hub when it holds the
file. The run picks decisions up within seconds: a retried event is applied and spliced into its
place in history by source position; a halted table resumes once none of its letters is open.
"""

from __future__ import annotations

from typing import Any

from cdchub.replay_service import post_to_running
from connectors.warehouses import open_session
from core.config import DuckDBWarehouse, HubConfig
from core.errors import ConfigError, MergeError
from merge import dead_letters
from merge.session import WarehouseSession
from ops.access import QueryTicket, live_ticket, open_reader
from ops.dashboard import DLQ_PATH
from ops.history import find_table

ACTIONS = {"retry": dead_letters.RETRY, "skip": dead_letters.SKIPPED}


def list_letters(
    config: HubConfig, *, include_done: bool = False, letter_id: str | None = None
) -> list[dead_letters.DeadLetter]:
    """Letters of the configured consumer group (open and retrying ones unless `include_done`)."""
    statuses: tuple[str, ...] = (
        ()
        if include_done or letter_id
        else (
            dead_letters.OPEN,
            dead_letters.RETRY,
        )
    )
    reader = open_reader(config)
    try:
        return dead_letters.letters(
            reader,  # type: ignore[arg-type]
            config.kafka.group_id,
            statuses=statuses,
            letter_id=letter_id,
        )
    finally:
        reader.close()


def decide(
    session: WarehouseSession,
    group: str,
    action: str,
    letter_ids: list[str],
    table: str | None = None,
) -> list[str]:
    """Mark letters for retry or skip; the ids changed.

    Raises:
        ConfigError: an unknown id, a letter already applied, or a table with no open letter.
    """
    status = ACTIONS[action]
    chosen: list[str] = []
    if table is not None:
        found = [
            letter
            for letter in dead_letters.letters(
                session, group, statuses=(dead_letters.OPEN, dead_letters.SKIPPED)
            )
            if _names_table(session, letter, table)
        ]
        if not found:
            raise ConfigError(f"no open or skipped dead letter for table {table}")
        chosen = [letter.letter_id for letter in found]
    for letter_id in letter_ids:
        found = dead_letters.letters(session, group, letter_id=letter_id)
        if not found:
            raise ConfigError(f"no dead letter {letter_id} (see `cdchub dlq list --all`)")
        if found[0].status == dead_letters.APPLIED:
            raise ConfigError(f"dead letter {letter_id} was applied already")
        chosen.append(letter_id)
    with session.transaction():
        dead_letters.set_status(session, group, chosen, status)
    return chosen


def _names_table(session: WarehouseSession, letter: dead_letters.DeadLetter, table: str) -> bool:
    """Whether `table` (as `--table` takes it everywhere: `shop.orders`, `shop.public.orders` or
    the warehouse name) is the letter's table. The catalog decides when it knows the table; a letter
    of a table the warehouse never created is matched by its source name."""
    try:
        known = find_table(session, table)
    except ConfigError:
        short = letter.table_name.rsplit(".", 1)[-1]
        return table in (f"{letter.source}.{letter.table_name}", f"{letter.source}.{short}")
    return (letter.source, letter.table_name) == (
        known.source,
        f"{known.source_schema}.{known.source_table}",
    )


def decide_in_run(session: WarehouseSession, group: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The running hub's side of `decide` (its endpoint hands the request to the run loop)."""
    changed = decide(
        session, group, str(doc["action"]), [str(i) for i in doc.get("ids", [])], doc.get("table")
    )
    return {"changed": changed}


def change(
    config: HubConfig, action: str, letter_ids: list[str], table: str | None = None
) -> list[str]:
    """Retry or skip letters, in this process or through the running hub that holds DuckDB."""
    try:
        session = open_session(config)
    except MergeError:
        # Not a ticket left by a killed run: the holder's own, once it has published it.
        ticket = live_ticket(QueryTicket.path(config))
        if not isinstance(config.warehouse, DuckDBWarehouse) or ticket is None:
            raise
        return _through_running(ticket, {"action": action, "ids": letter_ids, "table": table})
    try:
        dead_letters.ensure_table(session)
        return decide(session, config.kafka.group_id, action, letter_ids, table)
    finally:
        session.close()


def _through_running(ticket: QueryTicket, doc: dict[str, Any]) -> list[str]:
    answer = post_to_running(ticket, DLQ_PATH, doc, timeout_s=120.0, refused=ConfigError)
    return list(answer["changed"])
