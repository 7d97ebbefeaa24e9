"""Start, find, wait for and stop the detached server processes of the local stack.

A started process is recorded only by its pid file; `is_running` trusts a pid only when /proc shows
the expected command line, so a recycled pid never makes us report (or kill) somebody else's
process.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import StackError


@dataclass(frozen=True)
class RunAs:
    """An OS user to run a server as (PostgreSQL refuses to run as root)."""

    name: str
    uid: int
    gid: int


def service_user(name: str) -> RunAs | None:
    """The OS user `name` when we are root and it exists; None means "run as ourselves"."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def chown_tree(path: Path, user: RunAs | None) -> None:
    """Give `path` (recursively) to `user`; a no-op when running as ourselves."""
    if user is None:
        return
    os.chown(path, user.uid, user.gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), user.uid, user.gid, follow_symlinks=False)


def read_pid(pidfile: Path) -> int | None:
    """The pid recorded in `pidfile`, or None when there is no usable pid file."""
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cmdline(pid: int) -> list[str] | None:
    """The argv of a live, non-zombie process, or None.

    A JVM shows an empty command line for a moment after it starts (its launcher sets itself up);
    read that way, a healthy new broker looked dead ("exited during startup" with nothing in its
    log, while it ran on). An empty one of a live process is read again for up to a second.
    """
    for _ in range(100):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            # The state letter follows the parenthesised command name; Z/X are dead processes.
            if stat[stat.rindex(")") + 2] in "ZX":
                return None
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        if raw:
            return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
        time.sleep(0.01)
    return []


def pid_matches(pid: int, expect: Sequence[str]) -> bool:
    """True if `pid` is alive and its command line contains every string in `expect`."""
    argv = _cmdline(pid)
    if not argv:
        return False
    joined = " ".join(argv)
    return all(token in joined for token in expect)


def is_running(pidfile: Path, expect: Sequence[str]) -> bool:
    """True if the pid in `pidfile` is alive and is the expected program (see `pid_matches`)."""
    pid = read_pid(pidfile)
    return pid is not None and pid_matches(pid, expect)


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    pidfile: Path,
    user: RunAs | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Start `argv` detached (own session), output appended to `log`; write and return its pid.

    The process survives the calling Python process; only its pid file ties it to the stack.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== cdchub: starting {argv[0]} at {time.strftime('%F %T')} ===\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            user=user.uid if user else None,
            group=user.gid if user else None,
            extra_groups=[] if user else None,
        )
    # Keep the Popen object from warning at exit: the child is meant to outlive us.
    proc.returncode = 0
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def run(
    argv: Sequence[str],
    *,
    component: str,
    log: Path,
    user: RunAs | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> None:
    """Run a one-off setup command (initdb, install-db, storage format), output to `log`.

    Raises:
        StackError: the command failed or timed out; names the component and the log.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== cdchub: running {' '.join(argv)} ===\n".encode())
        out.flush()
        try:
            result = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                timeout=timeout,
                user=user.uid if user else None,
                group=user.gid if user else None,
                extra_groups=[] if user else None,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(
                f"{Path(argv[0]).name} timed out after {timeout:.0f}s", component=component, log=log
            ) from exc
        except OSError as exc:
            raise StackError(
                f"cannot run {argv[0]}: {exc.strerror}", component=component, log=log
            ) from exc
    if result.returncode != 0:
        raise StackError(
            f"{Path(argv[0]).name} exited with status {result.returncode}: {log_tail(log)}",
            component=component,
            log=log,
        )


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def exit_description(pid: int) -> str | None:
    """How our own child `pid` ended ("exit code 1", "killed by SIGKILL"), or None if unknown.

    A server that dies before writing a line (the kernel's OOM killer, a JVM that cannot reserve
    its heap) leaves nothing in its log; its exit status is then the only clue.
    """
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if done == 0:
        return None
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def stop(
    pidfile: Path,
    expect: Sequence[str],
    *,
    sig: signal.Signals = signal.SIGTERM,
    timeout: float = 30,
) -> bool:
    """Stop the process recorded in `pidfile` with `sig`, then SIGKILL after `timeout` seconds.

    Returns True if a process was stopped, False if none of ours was running. The pid file is
    removed either way. A pid whose command line does not match `expect` is never signalled.
    """
    pid = read_pid(pidfile)
    if pid is None or not pid_matches(pid, expect):
        pidfile.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_matches(pid, expect):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            _reap(pid)
            if not pid_matches(pid, expect):
                break
            time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
    return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.25,
) -> bool:
    """Poll `predicate` until it is true (True) or `timeout` passes (False).

    `alive` is checked too: when the process under watch has died there is no point in waiting, and
    the caller's error can say so at once instead of after the whole timeout.

    Raises:
        ProcessDied: `alive()` returned False before the predicate held.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return True
        except Exception:  # a health probe failing is just "not yet"
            pass
        # Dead only if it stays dead: a process can look gone for an instant from /proc (seen: a
        # Kafka broker reported "exited during startup" while it went on running; a command line
        # read mid-exec is empty).
        if alive is not None and not alive():
            time.sleep(interval)
            if not alive():
                raise ProcessDied()
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class ProcessDied(Exception):
    """The watched process exited while we were waiting for it to become healthy."""


def log_tail(log: Path, lines: int = 3, width: int = 400) -> str:
    """The last non-empty lines of a log file, joined, for error messages."""
    try:
        with log.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    tail = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    return " | ".join(tail)[-width:]
