"""MariaDB 10.11 for the local stack: own datadir, row-based binlog with GTIDs, 127.0.0.1 only."""

from __future__ import annotations

import getpass
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pymysql

from infrastructure.stack import process
from infrastructure.stack.component import Component, Launch, Progress
from infrastructure.stack.layout import HOST, MARIADB_ADMIN_USER, MARIADB_CDC_USER, Credentials

MARIADBD = os.environ.get("CDCHUB_MARIADBD", "/usr/sbin/mariadbd")
INSTALL_DB = os.environ.get("CDCHUB_MARIADB_INSTALL_DB", "/usr/bin/mariadb-install-db")

# What Debezium's MariaDB connector documents for its user. On 10.5.2+ REPLICATION CLIENT is only an
# alias of BINLOG MONITOR (needed for SHOW BINARY LOGS / SHOW MASTER STATUS); it is named
# explicitly so the grant reads the same on every version. REPLICATION SLAVE lets it stream
# the binlog.
CDC_PRIVILEGES = (
    "SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR"
)
# Both host forms: 'localhost' matches socket connections, '127.0.0.1' TCP ones (skip-name-resolve).
USER_HOSTS = ("127.0.0.1", "localhost")


class MariaDB(Component):
    """The MariaDB server; users are created over the root unix socket after start."""

    name = "mariadb"

    @property
    def port(self) -> int:
        return self.layout.config.stack.ports.mariadb

    @property
    def datadir(self) -> Path:
        return self.layout.data("mariadb")

    @property
    def rundir(self) -> Path:
        return self.layout.run / "mariadb"

    @property
    def socket(self) -> Path:
        return self.rundir / "mariadb.sock"

    @property
    def user(self) -> process.RunAs | None:
        return process.service_user("mysql")

    @property
    def os_user(self) -> str:
        """The OS user mariadbd runs as (`mysql` when we are root and it exists)."""
        if self.user is not None:
            return self.user.name
        return "root" if os.geteuid() == 0 else getpass.getuser()

    @property
    def bootstrap_user(self) -> str:
        """Our own OS user: unix_socket auth admits the MariaDB account of the *client's* OS user.

        install-db always creates root@localhost (unix_socket); as non-root we ask for ourselves.
        """
        return "root" if os.geteuid() == 0 else getpass.getuser()

    @property
    def expect(self) -> Sequence[str]:
        return [MARIADBD, f"--datadir={self.datadir}"]

    def prepare(self, progress: Progress) -> None:
        """Create the system tables once (mariadb-install-db) and the run directory."""
        self.layout.ensure_secret("mariadb_admin")
        self.layout.ensure_secret("mariadb_cdc")
        self.rundir.mkdir(parents=True, exist_ok=True)
        process.chown_tree(self.rundir, self.user)
        if (self.datadir / "mysql" / "user.frm").exists() or (
            self.datadir / "mysql" / "db.frm"
        ).exists():
            return
        progress(f"mariadb: initialising datadir {self.datadir}")
        if self.datadir.exists():
            shutil.rmtree(self.datadir)  # leftovers of a failed install-db
        self.datadir.mkdir(parents=True, mode=0o750)
        process.chown_tree(self.datadir, self.user)
        argv = [
            INSTALL_DB,
            "--no-defaults",  # /etc/mysql must never leak into our server
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            "--skip-name-resolve",
        ]
        if os.geteuid() == 0:
            argv.append(f"--user={self.os_user}")
        else:
            argv.append(f"--auth-root-socket-user={self.bootstrap_user}")
        try:
            process.run(argv, component=self.name, log=self.log, timeout=180, cwd=self.datadir)
        except Exception:
            shutil.rmtree(self.datadir, ignore_errors=True)
            raise

    def launch(self) -> Launch:
        """`mariadbd` in the foreground with the binlog settings Debezium needs."""
        argv = [
            MARIADBD,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--bind-address={HOST}",
            f"--port={self.port}",
            f"--socket={self.socket}",
            f"--pid-file={self.rundir / 'mariadb.pid'}",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            # Debezium reads the binlog: row events with full before/after images, GTIDs strict.
            f"--log-bin={self.datadir / 'mariadb-bin'}",
            "--binlog-format=ROW",
            "--binlog-row-image=FULL",
            "--server-id=1",
            "--log-slave-updates",
            "--gtid-strict-mode=ON",
            # A week of binlog, so a stopped connector can resume after a few days.
            "--binlog-expire-logs-seconds=604800",
            "--innodb-buffer-pool-size=128M",
        ]
        if os.geteuid() == 0:
            # mariadbd drops to this user itself (it refuses root unless told --user=root).
            argv.append(f"--user={self.os_user}")
        return Launch(argv=argv, cwd=self.datadir)

    def _socket_connect(self) -> pymysql.connections.Connection:
        """Root (unix_socket auth, no password) over the server's socket: the bootstrap login."""
        return pymysql.connect(
            unix_socket=str(self.socket),
            user=self.bootstrap_user,
            connect_timeout=3,
            autocommit=True,
        )

    def connect(
        self, creds: Credentials | None = None, **kwargs: Any
    ) -> pymysql.connections.Connection[Any]:
        """A TCP connection as the admin (default) or another user."""
        creds = creds or self.layout.mariadb_admin
        return pymysql.connect(
            host=creds.host,
            port=creds.port,
            user=creds.user,
            password=creds.password(),
            connect_timeout=3,
            autocommit=True,
            **kwargs,
        )

    def answers(self) -> bool:
        """True once a query over the socket works (TCP and socket open together).

        A bare TCP probe would leave an "Aborted connection" warning in the log every poll.
        """
        conn = self._socket_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            conn.close()
        return True

    def after_start(self, progress: Progress) -> None:
        """Create/refresh the admin (ALL, WITH GRANT OPTION) and the Debezium user, both hosts."""
        admin_pw = self.layout.mariadb_admin.password()
        cdc_pw = self.layout.mariadb_cdc.password()
        conn = self._socket_connect()
        try:
            with conn.cursor() as cur:
                for host in USER_HOSTS:
                    # CREATE IF NOT EXISTS + ALTER keeps the password in step with the secret file.
                    for user, pw in ((MARIADB_ADMIN_USER, admin_pw), (MARIADB_CDC_USER, cdc_pw)):
                        cur.execute(
                            "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, pw)
                        )
                        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, pw))
                    cur.execute(
                        "GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION",
                        (MARIADB_ADMIN_USER, host),
                    )
                    cur.execute(f"GRANT {CDC_PRIVILEGES} ON *.* TO %s@%s", (MARIADB_CDC_USER, host))
        finally:
            conn.close()
