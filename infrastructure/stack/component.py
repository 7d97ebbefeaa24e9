"""What every local-stack server has in common: pid file, log, port, start-and-wait routine."""

from __future__ import annotations

import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import StackError
from infrastructure.stack import process
from infrastructure.stack.layout import HOST, StackLayout

Progress = Callable[[str], None]


@dataclass
class Launch:
    """How to start a server: its argv, the OS user to run it as, extra environment."""

    argv: list[str]
    user: process.RunAs | None = None
    env: dict[str, str] | None = None
    cwd: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Component(ABC):
    """One server of the stack. Subclasses say how to prepare, launch and probe it."""

    name: str
    # Postgres wants SIGINT ("fast" shutdown); SIGTERM waits for clients such as Debezium.
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 30

    def __init__(self, layout: StackLayout) -> None:
        self.layout = layout

    @property
    @abstractmethod
    def port(self) -> int:
        """The port the server listens on (the one named in errors)."""

    @property
    def log(self) -> Path:
        return self.layout.log(self.name)

    @property
    def pidfile(self) -> Path:
        return self.layout.pidfile(self.name)

    @property
    @abstractmethod
    def expect(self) -> Sequence[str]:
        """Strings its /proc cmdline must contain (binary + something unique to this stack)."""

    @abstractmethod
    def prepare(self, progress: Progress) -> None:
        """Create data directories / config files before a start (idempotent)."""

    @abstractmethod
    def launch(self) -> Launch:
        """The command that runs the server in the foreground."""

    @abstractmethod
    def answers(self) -> bool:
        """True if the server accepts requests (not merely that its process is alive)."""

    def after_start(self, progress: Progress) -> None:
        """Idempotent bootstrap once the server answers (users, grants). Default: nothing."""
        del progress

    def error(self, message: str) -> StackError:
        """A StackError naming this component, its port and its log."""
        return StackError(message, component=self.name, port=self.port, log=str(self.log))

    def process_alive(self) -> bool:
        """True if the pid file names a live process of this server."""
        return process.is_running(self.pidfile, self.expect)

    def running(self) -> bool:
        """True only if our process is alive AND answers."""
        try:
            return self.process_alive() and self.answers()
        except Exception:
            return False

    def pid(self) -> int | None:
        """The recorded pid if that process is alive, else None."""
        return process.read_pid(self.pidfile) if self.process_alive() else None

    def up(self, progress: Progress, timeout: float) -> None:
        """Start the server unless it is already running; wait until it answers; bootstrap it.

        Raises:
            StackError: the port is taken by someone else, the server died, or it never answered.
        """
        if self.process_alive():
            self._wait_ready(timeout, started=None)
            self.after_start(progress)
            progress(f"{self.name}: already running on {HOST}:{self.port}")
            return
        # A stale pid file (crash, reboot) is simply replaced.
        self.pidfile.unlink(missing_ok=True)
        if process.port_open(HOST, self.port):
            raise self.error(
                f"port {self.port} is already in use by a process this stack did not start; "
                "stop it or change stack.ports in the config"
            )
        self.prepare(progress)
        progress(f"{self.name}: starting on {HOST}:{self.port} …")
        started = time.monotonic()
        spec = self.launch()
        process.spawn(
            spec.argv,
            log=self.log,
            pidfile=self.pidfile,
            user=spec.user,
            env=spec.env,
            cwd=spec.cwd,
        )
        self._wait_ready(timeout, started=started)
        self.after_start(progress)
        progress(f"{self.name}: ready ({time.monotonic() - started:.1f}s)")

    def _wait_ready(self, timeout: float, started: float | None) -> None:
        try:
            ok = process.wait_until(self.answers, timeout=timeout, alive=self.process_alive)
        except process.ProcessDied:
            pid = process.read_pid(self.pidfile)
            how = process.exit_description(pid) if pid is not None else None
            tail = process.log_tail(self.log)
            ended = f" ({how})" if how else ""
            raise self.error(f"{self.name} exited during startup{ended}: {tail}") from None
        if not ok:
            waited = time.monotonic() - started if started is not None else timeout
            raise self.error(f"{self.name} did not become ready within {waited:.0f}s")

    def down(self, progress: Progress) -> None:
        """Stop our process (pid file only), if it is running."""
        if process.stop(self.pidfile, self.expect, sig=self.stop_signal, timeout=self.stop_timeout):
            progress(f"{self.name}: stopped")
        else:
            progress(f"{self.name}: not running")
