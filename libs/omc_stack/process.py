"""Processes the stack starts: pid files, ownership, ports, stopping, log tails.

A process belongs to the stack when its pid file names it *and* its command line or working
directory lies under the stack directory (every component starts there, with paths under
it; the working directory covers servers such as redis that rewrite their process title).
That check keeps `down` from signalling an unrelated process that reused a stale pid.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

START_BANNER = "=== omc stack: starting "


@dataclass(frozen=True)
class PidFile:
    """The record of one started process."""

    path: Path

    def read(self) -> int | None:
        """The pid it names, or None when there is no (readable) file."""
        try:
            return int(json.loads(self.path.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, pid: int, command: Sequence[str]) -> None:
        self.path.write_text(json.dumps({"pid": pid, "command": list(command)}) + "\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def command_line(pid: int) -> str | None:
    """The process's command line joined by spaces, or None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:  # a zombie: exited, not yet reaped
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_owned(pid: int, marker: str) -> bool:
    """True when `pid` is alive and its command line or working directory mentions `marker`."""
    cmdline = command_line(pid)
    if cmdline is None:
        return False
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = ""
    return marker in cmdline or cwd.startswith(marker)


def start(command: Sequence[str], log_path: Path, *, cwd: Path, label: str,
          env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `command` in its own session, appending stdout and stderr to `log_path`;
    `env` adds to the inherited environment."""
    with log_path.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n{START_BANNER}{label} at {stamp} ===\n".encode())
        log.flush()
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )


def stop(pid: int, *, grace: float) -> bool:
    """SIGTERM the process group of `pid`, then SIGKILL after `grace` seconds.

    Returns True if it had to be killed.
    """
    _signal_group(pid, signal.SIGTERM)
    if _wait_gone(pid, grace):
        return False
    _signal_group(pid, signal.SIGKILL)
    _wait_gone(pid, 10)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if command_line(pid) is None:
            return True
        time.sleep(0.1)
    return command_line(pid) is None


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (a no-op otherwise)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port (checked by binding it, then letting go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_owner(port: int) -> str | None:
    """Best effort: 'pid N (command line)' of the process listening on `port`, via /proc."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and any(_readlink(fd) in inodes for fd in _fds(proc)):
            cmdline = command_line(int(proc.name)) or "?"
            return f"pid {proc.name} ({cmdline[:120]})"
    return None


def _fds(proc: Path) -> list[Path]:
    try:
        return list((proc / "fd").iterdir())
    except OSError:  # gone, or not ours to read
        return []


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:  # closed while we looked
        return ""


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(f"socket:[{inode}]")
    return inodes


def log_tail(log_path: Path, lines: int = 20, *, last_start_only: bool = True) -> str:
    """The last `lines` lines of a component log (by default only of its latest start)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log yet)"
    if last_start_only and START_BANNER in text:
        text = text[text.rindex(START_BANNER):]
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])
