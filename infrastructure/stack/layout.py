"""Where every local-stack component keeps its files, and the fixed names of its users.

Both the stack (which creates these) and the tools that use the stack (schema loader, workload, tests)
read locations from here, so no path or user name is spelt twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from core.config import HubConfig, PostgresWarehouse

HOST = "127.0.0.1"
PG_ADMIN_USER = "cdchub_admin"
PG_CDC_USER = "cdc_reader"
# The PostgreSQL warehouse (warehouse.kind: postgres): a database owned by its own user.
PG_WAREHOUSE_USER = "cdchub_warehouse"
PG_WAREHOUSE_DB = "cdchub_warehouse"
MARIADB_ADMIN_USER = "cdchub_admin"
MARIADB_CDC_USER = "cdc_reader"


@dataclass(frozen=True)
class Credentials:
    """A user of a local server; the password lives in `password_file`, never in output."""

    host: str
    port: int
    user: str
    password_file: Path

    def password(self) -> str:
        """Read the password from its file."""
        return self.password_file.read_text().strip()


@dataclass(frozen=True)
class StackLayout:
    """Paths and users of the local stack described by one config."""

    config: HubConfig

    @property
    def root(self) -> Path:
        return self.config.state_dir

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Pid files of the processes `stack up` started."""
        return self.root / "run"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    def data(self, component: str) -> Path:
        return self.root / "data" / component

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pidfile(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def secret_file(self, name: str) -> Path:
        return self.secrets / f"{name}.password"

    @property
    def pg_admin(self) -> Credentials:
        return Credentials(
            HOST,
            self.config.stack.ports.postgres,
            PG_ADMIN_USER,
            self.secret_file("postgres_admin"),
        )

    @property
    def pg_cdc(self) -> Credentials:
        return Credentials(
            HOST, self.config.stack.ports.postgres, PG_CDC_USER, self.secret_file("postgres_cdc")
        )

    @property
    def pg_warehouse(self) -> Credentials:
        return Credentials(
            HOST,
            self.config.stack.ports.postgres,
            PG_WAREHOUSE_USER,
            self.secret_file("postgres_warehouse"),
        )

    def pg_warehouse_config(self) -> PostgresWarehouse:
        """The warehouse database `stack up` creates, as a user would configure it."""
        creds = self.pg_warehouse
        return PostgresWarehouse(
            kind="postgres",
            host=creds.host,
            port=creds.port,
            database=PG_WAREHOUSE_DB,
            user=creds.user,
            password_file=creds.password_file,
        )

    def local_warehouse(self, kind: str) -> BaseModel | None:
        """The warehouse of `kind` that `stack up` runs, as a user would configure it, or None."""
        runs: dict[str, Callable[[], BaseModel]] = {"postgres": self.pg_warehouse_config}
        found = runs.get(kind)
        return found() if found else None

    @property
    def mariadb_admin(self) -> Credentials:
        return Credentials(
            HOST,
            self.config.stack.ports.mariadb,
            MARIADB_ADMIN_USER,
            self.secret_file("mariadb_admin"),
        )

    @property
    def mariadb_cdc(self) -> Credentials:
        return Credentials(
            HOST, self.config.stack.ports.mariadb, MARIADB_CDC_USER, self.secret_file("mariadb_cdc")
        )

    def ensure_secret(self, name: str) -> Path:
        """Create a random password file (mode 0600) once; later calls reuse it."""
        path = self.secret_file(name)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o700)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24) + "\n")
        return path
