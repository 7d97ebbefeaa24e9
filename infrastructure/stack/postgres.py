"""PostgreSQL 15 for the local stack: its own cluster, logical decoding on, 127.0.0.1 only."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql

from infrastructure.stack import process
from infrastructure.stack.component import Component, Launch, Progress
from infrastructure.stack.layout import (
    HOST,
    PG_CDC_USER,
    PG_WAREHOUSE_DB,
    PG_WAREHOUSE_USER,
    Credentials,
)

# The Debian binaries; /usr/local/bin may hold wrappers that pick another cluster or version.
PG_BIN = Path(os.environ.get("CDCHUB_PG_BIN", "/usr/lib/postgresql/15/bin"))

# Everything not local is refused; the same scram rule covers replication connections (Debezium).
PG_HBA = """\
# written by cdchub: scram-sha-256 for every user, 127.0.0.1 only
local   all          all                  scram-sha-256
host    all          all   127.0.0.1/32   scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
"""


class Postgres(Component):
    """The PostgreSQL server; the admin superuser is created by initdb, the CDC user after start."""

    name = "postgres"
    stop_signal = signal.SIGINT

    @property
    def port(self) -> int:
        return self.layout.config.stack.ports.postgres

    @property
    def datadir(self) -> Path:
        return self.layout.data("postgres")

    @property
    def socket_dir(self) -> Path:
        return self.layout.run / "postgres"

    @property
    def user(self) -> process.RunAs | None:
        return process.service_user("postgres")

    @property
    def expect(self) -> Sequence[str]:
        return [str(PG_BIN / "postgres"), str(self.datadir)]

    def prepare(self, progress: Progress) -> None:
        """Create the cluster once (initdb with the admin password) and the socket directory."""
        admin_pw = self.layout.ensure_secret("postgres_admin")
        self.layout.ensure_secret("postgres_cdc")
        self.layout.ensure_secret("postgres_warehouse")
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        process.chown_tree(self.socket_dir, self.user)
        if (self.datadir / "PG_VERSION").exists():
            return
        progress(f"postgres: initialising cluster in {self.datadir}")
        if self.datadir.exists():
            shutil.rmtree(self.datadir)  # a half-made cluster from a failed initdb
        self.datadir.mkdir(parents=True, mode=0o700)
        process.chown_tree(self.datadir, self.user)
        # initdb runs as postgres and cannot read the 0700 secrets dir: hand it a short-lived copy.
        pwfile = self.socket_dir / "initdb.pw"
        pwfile.touch(mode=0o600)
        pwfile.write_text(admin_pw.read_text())
        process.chown_tree(pwfile, self.user)
        try:
            process.run(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    self.layout.pg_admin.user,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--no-locale",
                ],
                component=self.name,
                log=self.log,
                user=self.user,
                cwd=self.datadir,
            )
        except Exception:
            shutil.rmtree(self.datadir, ignore_errors=True)
            raise
        finally:
            pwfile.unlink(missing_ok=True)
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(PG_HBA)
        process.chown_tree(hba, self.user)

    def launch(self) -> Launch:
        """`postgres` in the foreground; settings on the command line so port changes just work."""
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "wal_level": "logical",
            "max_replication_slots": "20",
            "max_wal_senders": "20",
            # Logs go to stderr, which spawn() appends to layout.log("postgres").
            "logging_collector": "off",
            "log_destination": "stderr",
        }
        argv = [str(PG_BIN / "postgres"), "-D", str(self.datadir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return Launch(argv=argv, user=self.user, cwd=self.datadir)

    def connect(self, creds: Credentials | None = None, **kwargs: object) -> psycopg.Connection:
        """A connection as the admin (default) or another user, over TCP to 127.0.0.1."""
        creds = creds or self.layout.pg_admin
        return psycopg.connect(
            host=creds.host,
            port=creds.port,
            user=creds.user,
            password=creds.password(),
            dbname="postgres",
            connect_timeout=3,
            autocommit=True,
            **kwargs,  # type: ignore[arg-type]
        )

    def answers(self) -> bool:
        """True once the admin can log in and run a query (not during crash recovery)."""
        with self.connect() as conn:
            conn.execute("SELECT 1")
        return True

    def after_start(self, progress: Progress) -> None:
        """Create or update the Debezium user: LOGIN REPLICATION, password from its secret file.

        Table SELECT grants and the publication are the schema loader's job.
        """
        password = self.layout.pg_cdc.password()
        with self.connect() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (PG_CDC_USER,)
            ).fetchone()
            # DDL cannot take bind parameters; sql.Literal quotes the password client-side.
            verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
            conn.execute(
                sql.SQL("{} {} WITH LOGIN REPLICATION PASSWORD {}").format(
                    verb, sql.Identifier(PG_CDC_USER), sql.Literal(password)
                )
            )
        self._ensure_warehouse(progress)

    def _ensure_warehouse(self, progress: Progress) -> None:
        """The warehouse database for `warehouse.kind: postgres`, owned by its own login user.

        The warehouse user owns only that database: it creates the per-source schemas and the
        `_cdchub` control schema there, and has no rights on the source databases.
        """
        password = self.layout.pg_warehouse.password()
        with self.connect() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (PG_WAREHOUSE_USER,)
            ).fetchone()
            verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
            conn.execute(
                sql.SQL("{} {} WITH LOGIN PASSWORD {}").format(
                    verb, sql.Identifier(PG_WAREHOUSE_USER), sql.Literal(password)
                )
            )
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (PG_WAREHOUSE_DB,)
            ).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(PG_WAREHOUSE_DB), sql.Identifier(PG_WAREHOUSE_USER)
                    )
                )
                progress(f"postgres: created warehouse database {PG_WAREHOUSE_DB}")
