"""The cdchub configuration file: one YAML document validated by pydantic.

Chosen by `--config PATH`, else `$CDCHUB_CONFIG`, else `cdchub.yaml` in the current directory.
`${VAR}` anywhere in a string value is replaced from the environment (a missing variable is an error
naming it); secrets may also be read from a file (`password_file`). Unknown keys are errors, so a misspelt
key fails loudly with its path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from core.errors import ConfigError
from core.observability_config import ChecksConfig, ObservabilityConfig

DEFAULT_CONFIG_NAME = "cdchub.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
# A size DuckDB's settings read (`memory_limit`, `checkpoint_threshold`): a number and a unit.
_MEMORY_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StackPorts(_Model):
    """Ports of the native local stack; defaults avoid the standard ones (5432, 3306, 9092, 8083)."""

    postgres: int = 25432
    mariadb: int = 23306
    kafka: int = 29092
    kafka_controller: int = 29093
    connect: int = 28083


class StackConfig(_Model):
    """The local stack that `cdchub stack up` runs on 127.0.0.1."""

    ports: StackPorts = StackPorts()
    # Heap sizes keep the two JVMs small on a laptop or a CI runner.
    kafka_heap: str = "512m"
    connect_heap: str = "768m"


class KafkaConfig(_Model):
    """How consumers reach Kafka."""

    bootstrap_servers: str = "127.0.0.1:29092"
    group_id: str = "cdchub"
    # Records fetched per poll; a batch is cut at this many events or after `batch_max_wait_ms`.
    # Each batch costs a fixed set of statements per table, so a catch-up wants big ones (bench
    # catchup, docs/benchmarks.md); a quiet stream cuts small batches by the wait anyway.
    batch_max_events: int = Field(20_000, gt=0)
    # ... or once its records hold this many bytes (key + value as received); Kafka fetches are
    # sized by it too, so it bounds the consumer's memory whatever the record size.
    batch_max_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024)
    batch_max_wait_ms: int = Field(500, ge=0)
    # A full batch whose predecessor is still being applied keeps reading, up to this multiple of
    # the two limits above, rather than wait for it: the consumer's thread does not idle, and the
    # bigger batch costs fewer statements per event (1 cuts batches at the limits exactly). It
    # holds more decoded events: at 2 the catch-up bench's peak RSS rose from 421-465 to 484 MB.
    batch_stretch: float = Field(1.5, ge=1.0)
    # Bytes one Kafka fetch may return (as stored: zstd-compressed, ~90 B a Debezium record here),
    # from one partition or several. Smaller fetches hold less while they are parsed: 4 MiB kept a
    # catch-up's peak RSS ~40 MB lower at ~15% of its throughput (docs/benchmarks.md, third round).
    fetch_max_bytes: int = Field(16 * 1024 * 1024, ge=1024 * 1024)
    # Transaction-consistent sources park events until their transaction is whole (see
    # docs/transactions.md); past these bounds a transaction is applied without that guarantee.
    transaction_buffer_max_events: int = Field(100_000, gt=0)
    transaction_timeout_s: float = Field(30.0, gt=0)


class ConnectConfig(_Model):
    """Where the Kafka Connect REST API listens."""

    url: str = "http://127.0.0.1:28083"


class _Login(_Model):
    """A model that logs in with `password` (inline, e.g. `${VAR}`) or `password_file`.

    Each model declares the two fields itself, in its own field order; this base validates that one
    is set and reads the password (the file only when no inline value is set).
    """

    if TYPE_CHECKING:
        password: SecretStr | None
        password_file: Path | None

    # The environment variable the "set a password" message suggests.
    PASSWORD_EXAMPLE: ClassVar[str]

    def _facts(self) -> dict[str, str]:
        """Who the password is for, in a `password_file` error."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _check_secret(self) -> Self:
        if self.password is None and self.password_file is None:
            raise ValueError(
                f"set either 'password' (e.g. ${{{self.PASSWORD_EXAMPLE}}}) or 'password_file'"
            )
        return self

    def secret(self) -> str:
        """The password, read from `password_file` when no inline `password` is set."""
        if self.password is not None:
            return self.password.get_secret_value()
        assert self.password_file is not None
        try:
            return self.password_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read password_file: {exc.strerror}",
                **self._facts(),
                path=str(self.password_file),
            ) from exc


class SourceConfig(_Login):
    """One operational database captured by one Debezium connector.

    `name` is the Kafka topic prefix and the warehouse schema, so it must be a plain lower-case identifier.
    """

    name: str
    kind: Literal["postgres", "mariadb", "mysql"]
    host: str = "127.0.0.1"
    port: int
    database: str
    user: str
    password: SecretStr | None = None
    password_file: Path | None = None
    tables: list[str] | None = None
    # PostgreSQL only: the logical replication slot and publication Debezium uses.
    slot_name: str | None = None
    publication_name: str | None = None
    # MariaDB/MySQL only: a server id unique among the replicas of the source.
    server_id: int | None = None
    heartbeat_interval_ms: int = Field(10000, ge=0)
    # PostgreSQL only: the table Debezium's heartbeat action query upserts, so the slot advances
    # while the captured tables are idle (connectors/heartbeat.py); `public.` unless qualified;
    # null turns it off.
    heartbeat_table: str | None = "cdchub_heartbeat"
    snapshot_mode: str = "initial"
    # The Debezium signaling table `cdchub backfill` writes to (connectors/signals.py): PostgreSQL
    # `public.` unless qualified, MariaDB/MySQL the source database; null turns signaling off.
    signal_table: str | None = "cdchub_signal"
    # Apply each source transaction atomically across its tables (needs Debezium transaction metadata).
    transaction_consistent: bool = True
    # Key columns of tables without a primary key (`schema.table` → columns); PostgreSQL tables also
    # need REPLICA IDENTITY FULL. Becomes Debezium's `message.key.columns`.
    key_columns: dict[str, list[str]] = Field(default_factory=dict)
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _SOURCE_NAME.match(value):
            raise ValueError(
                "must be a lower-case identifier (letters, digits, underscore; starting with a letter): "
                "it becomes a Kafka topic prefix and a warehouse schema name"
            )
        return value

    @field_validator("tables")
    @classmethod
    def _check_tables(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for table in value:
                if table.count(".") != 1:
                    raise ValueError(
                        f"{table!r}: write tables as '<schema>.<table>' (PostgreSQL) "
                        "or '<database>.<table>' (MariaDB/MySQL)"
                    )
        return value

    PASSWORD_EXAMPLE = "MY_DB_PASSWORD"

    def _facts(self) -> dict[str, str]:
        return {"source": self.name}

    @property
    def slot(self) -> str:
        """The PostgreSQL replication slot name (unique per source)."""
        return self.slot_name or f"cdchub_{self.name}"

    @property
    def publication(self) -> str:
        """The PostgreSQL publication name."""
        return self.publication_name or f"cdchub_{self.name}"


class DuckDBWarehouse(_Model):
    """The embedded default warehouse: one DuckDB file."""

    kind: Literal["duckdb"] = "duckdb"
    path: Path = Path(".cdchub/warehouse.duckdb")
    # DuckDB's own default is 80% of the machine's memory, and it keeps what it took: a run's
    # resident memory then grows with the warehouse. Past the limit DuckDB evicts cached blocks
    # and spills joins, windows and sorts to `<path>.tmp`. 192 MB held a 400,000-event catch-up's
    # peak at 444-461 MB (504-556 MB without a limit) at the same events/s (docs/benchmarks.md).
    # `null` leaves DuckDB's default.
    memory_limit: str | None = "192MB"
    # DuckDB checkpoints (writes the changed tables into the file and empties the WAL) when the
    # WAL passes this size, inside the commit that passed it. Its default, 16 MB, checkpoints every
    # few batches of a catch-up; 64 MB applied a 400,000-event catch-up 7-14% faster in interleaved
    # pairs, at the same peak RSS. The cost: up to that much WAL replayed when the file is opened
    # after a crash (about a second).
    checkpoint_threshold: str = "64MB"

    @field_validator("memory_limit", "checkpoint_threshold")
    @classmethod
    def _memory_size(cls, value: str | None) -> str | None:
        if value is not None and not _MEMORY_SIZE.match(value):
            raise ValueError(
                f"{value!r} is not a size: write a number and a unit, e.g. 192MB, 1GB "
                "or 512MiB (memory_limit may also be null: DuckDB's default, 80% of the "
                "machine's memory)"
            )
        return value

    @property
    def location(self) -> str:
        """Where the warehouse is, for status lines (no secret)."""
        return str(self.path)


class PostgresWarehouse(_Login):
    """A PostgreSQL database as the warehouse (the local stack creates `cdchub_warehouse`)."""

    kind: Literal["postgres"]
    host: str = "127.0.0.1"
    port: int = 5432
    database: str
    user: str
    password: SecretStr | None = None
    password_file: Path | None = None
    connect_timeout_s: int = Field(10, gt=0)

    PASSWORD_EXAMPLE = "WAREHOUSE_PASSWORD"

    def _facts(self) -> dict[str, str]:
        return {"warehouse": "postgres"}

    @property
    def location(self) -> str:
        """Where the warehouse is, for status lines (no secret)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


class SnowflakeWarehouse(_Login):
    """A Snowflake database as the warehouse (`snowflake-connector-python`)."""

    kind: Literal["snowflake"]
    account: str
    user: str
    password: SecretStr | None = None
    password_file: Path | None = None
    database: str
    # Temporary staging tables are created in this schema (they are session-private).
    schema_: str = Field("PUBLIC", alias="schema")
    compute_warehouse: str | None = None
    role: str | None = None

    PASSWORD_EXAMPLE = "SNOWFLAKE_PASSWORD"

    def _facts(self) -> dict[str, str]:
        return {"warehouse": "snowflake"}

    @property
    def location(self) -> str:
        """Where the warehouse is, for status lines (no secret)."""
        return f"snowflake://{self.user}@{self.account}/{self.database}/{self.schema_}"


WarehouseConfig = Annotated[
    DuckDBWarehouse | PostgresWarehouse | SnowflakeWarehouse, Field(discriminator="kind")
]


class DeadLetterConfig(_Model):
    """What follows when an event cannot be applied (docs/dead-letters.md).

    `halt` (the default): the table stops visibly, its later events are held, the others go on.
    `skip`: the event is stored in the dead-letter store, logged and counted, and the table goes on.
    `topic`: a Kafka topic that also receives each letter (the record's key and value as read, the
    error context in `__cdchub.errors.*` headers), produced after the warehouse stored it.
    """

    policy: Literal["halt", "skip"] = "halt"
    # Per table, `source.namespace.table` (e.g. `shop.public.orders`): its own policy.
    tables: dict[str, Literal["halt", "skip"]] = Field(default_factory=dict)
    # Like Kafka Connect's `errors.deadletterqueue.topic.name`; None: the warehouse table only.
    topic: str | None = None

    @field_validator("topic")
    @classmethod
    def _topic_name(cls, value: str | None) -> str | None:
        if value is not None and (not _TOPIC_NAME.match(value) or value in {".", ".."}):
            raise ValueError(
                f"{value!r} is not a Kafka topic name (1-249 characters of a-z A-Z 0-9 . _ -)"
            )
        return value

    def policy_for(self, table: str) -> str:
        """The policy of `source.namespace.table`."""
        return self.tables.get(table, self.policy)


class HubConfig(_Model):
    """The whole configuration file."""

    state_dir: Path = Path(".cdchub")
    stack: StackConfig = StackConfig()
    kafka: KafkaConfig = KafkaConfig()
    connect: ConnectConfig = ConnectConfig()
    sources: list[SourceConfig] = Field(default_factory=list)
    warehouse: WarehouseConfig = DuckDBWarehouse()
    observability: ObservabilityConfig = ObservabilityConfig()
    checks: ChecksConfig = ChecksConfig()
    dead_letters: DeadLetterConfig = DeadLetterConfig()
    # Where the file was read from; relative paths in it are resolved against its folder.
    config_path: Path | None = None

    @model_validator(mode="after")
    def _unique_sources(self) -> HubConfig:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        if isinstance(self.warehouse, DuckDBWarehouse) and self.warehouse.path.stem in names:
            # DuckDB names a file's catalog after the file: "shop"."orders" would then be ambiguous
            # (catalog or schema?) and every statement on the source's tables would fail.
            raise ValueError(
                f"warehouse.path {str(self.warehouse.path)!r} is named like the source "
                f"{self.warehouse.path.stem!r}; DuckDB would confuse the file with the source's "
                "schema. Rename the file (e.g. warehouse.duckdb)"
            )
        topic = self.dead_letters.topic
        if topic is not None and topic.split(".", 1)[0] in names:
            # `<source>.…` is that source's topic space: the run would read its letters back.
            raise ValueError(
                f"dead_letters.topic {topic!r} is in source {topic.split('.', 1)[0]!r}'s topic "
                "space (`<source>.…`), which `cdchub run` consumes; name it outside, e.g. "
                "cdchub.dead_letters"
            )
        return self

    def source(self, name: str) -> SourceConfig:
        """The source called `name`, or a ConfigError listing the configured ones."""
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} (configured: {known})")


def _expand_env(value: Any, path: str) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            if var in os.environ:
                return os.environ[var]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {var} is not set", key=path)

        return _ENV_REF.sub(repl, value)
    return value


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make relative paths in the file relative to the file's folder, not the caller's cwd."""

    def fix(p: Any) -> Any:
        if isinstance(p, str) and not Path(p).expanduser().is_absolute():
            return str((base / p).resolve())
        return p

    if "state_dir" in data:
        data["state_dir"] = fix(data["state_dir"])
    else:
        data["state_dir"] = str((base / ".cdchub").resolve())
    wh = data.get("warehouse")
    if isinstance(wh, dict) and "path" in wh:
        wh["path"] = fix(wh["path"])
    elif wh is None or (isinstance(wh, dict) and wh.get("kind", "duckdb") == "duckdb"):
        wh = dict(wh or {})
        wh.setdefault("kind", "duckdb")
        wh["path"] = str(Path(data["state_dir"]) / "warehouse.duckdb")
        data["warehouse"] = wh
    if isinstance(wh, dict) and "password_file" in wh:
        wh["password_file"] = fix(wh["password_file"])
    for src in data.get("sources") or []:
        if isinstance(src, dict) and "password_file" in src:
            src["password_file"] = fix(src["password_file"])
    return data


def config_location(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file cdchub will read: the argument, `$CDCHUB_CONFIG`, or `./cdchub.yaml`."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("CDCHUB_CONFIG")
    if env:
        return Path(env).expanduser().resolve()
    return (Path.cwd() / DEFAULT_CONFIG_NAME).resolve()


def load_config(path: str | os.PathLike[str] | None = None) -> HubConfig:
    """Read, expand and validate the configuration file.

    Raises:
        ConfigError: the file is missing or invalid; the message names the offending key.
    """
    location = config_location(path)
    try:
        raw = yaml.safe_load(location.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(
            "config file not found; pass --config PATH or set CDCHUB_CONFIG", path=str(location)
        ) from exc
    except IsADirectoryError as exc:
        raise ConfigError(
            "--config names a directory; give the config file (e.g. DIR/cdchub.yaml)",
            path=str(location),
        ) from exc
    except OSError as exc:  # unreadable: permissions, a broken link, …
        raise ConfigError(
            f"cannot read the config file: {exc.strerror or exc}", path=str(location)
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("config file is not UTF-8 text", path=str(location)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file is not valid YAML: {exc}", path=str(location)) from exc
    if not isinstance(raw, dict):
        raise ConfigError("config file must hold a YAML mapping at the top", path=str(location))
    data = _resolve_paths(_expand_env(raw, ""), location.parent)
    data["config_path"] = str(location)
    try:
        return HubConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid config: {problems}", path=str(location)) from exc
