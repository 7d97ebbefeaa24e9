"""The exception hierarchy shared by every cdchub stage.

One root (`CdcHubError`), two markers (`Retryable`, `Terminal`). Facts such as table, topic, partition
and offset are attributes; the message is rendered from them so logs and the CLI say the same thing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from core.model import ColumnType, TableId


class CdcHubError(Exception):
    """Root of every error cdchub raises on purpose."""

    def __init__(self, message: str, **context: Any) -> None:
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}
        super().__init__(self.render())

    def render(self) -> str:
        """The message followed by its context as `key=value` pairs."""
        if not self.context:
            return self.message
        facts = ", ".join(f"{k}={v}" for k, v in self.context.items())
        return f"{self.message} ({facts})"


class Retryable(CdcHubError):
    """A transient failure: the same operation may succeed if tried again."""


class Terminal(CdcHubError):
    """A failure that retrying cannot fix; a human must act."""


class ConfigError(Terminal):
    """The configuration file is missing, malformed or inconsistent."""


class StackError(Terminal):
    """A local-stack component failed to install, start or answer."""


class ConnectorError(CdcHubError):
    """Kafka Connect refused or failed a connector operation."""


class KafkaUnavailable(Retryable):
    """No Kafka broker answered (the stack is down, or the bootstrap servers are wrong)."""


class DecodeError(Terminal):
    """A Debezium record could not be decoded into a ChangeEvent."""


class MergeError(CdcHubError):
    """A batch could not be applied to the warehouse."""


class WarehouseUnavailable(Retryable, MergeError):
    """The warehouse did not answer (connection refused or lost); a later attempt may succeed."""


class ResourceExhausted(MergeError, Terminal):
    """The warehouse ran out of memory or disk while applying a batch.

    Terminal for the run (the same batch would fail again) and no table's fault: nothing is
    dead-lettered, no offset is committed, and the run stops with `hint`. Warehouse classifiers
    return a subclass whose `hint` names the setting to change.
    """

    hint: ClassVar[str] = "give the warehouse more memory or disk, then start `cdchub run` again"


class SchemaChangeError(MergeError):
    """A source column changed type in a way its warehouse column cannot follow.

    Only the table named by `table_id` must stop; the runner holds its changes and goes on.
    """

    def __init__(
        self,
        message: str,
        table_id: TableId,
        *,
        new_column_type: ColumnType | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.table_id = table_id
        # The source type the warehouse column must hold before the table may resume.
        self.new_column_type = new_column_type


class TableApplyError(MergeError, Terminal):
    """One table's events cannot be applied (a key-less table, a value or constraint the warehouse
    refuses): that table goes to the dead-letter store under its policy, the others go on.
    """

    def __init__(self, message: str, table_id: TableId, **context: Any) -> None:
        super().__init__(message, **context)
        self.table_id = table_id


class UnrepresentableValue(MergeError, Terminal):
    """A source value the warehouse's column type cannot store, refused rather than altered.

    Raised by a warehouse's value adapter (e.g. a BC date or `24:00:00` on Snowflake); the context
    names the warehouse, column, value and, once the engine adds it, the table.
    """

    # The table whose events carried the value (set by the engine; the runner dead-letters it).
    table_id: TableId | None = None
