"""The service supervisor restarts a crashing child with backoff and stops with its group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _supervise(tmp_path: Path, child: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "omc_stack.supervise", "--name", "t", *extra, "--",
         sys.executable, "-c", child],
        stdout=(tmp_path / "out.log").open("w"), stderr=subprocess.STDOUT,
        start_new_session=True, cwd=tmp_path,
    )


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_crashing_child_is_restarted_with_growing_backoff(tmp_path: Path) -> None:
    counter = tmp_path / "starts"
    child = (f"open({str(counter)!r}, 'a').write('x'); import sys; sys.exit(3)")
    supervisor = _supervise(tmp_path, child, "--initial-backoff", "0.1", "--max-backoff", "0.4")
    try:
        _wait_for(lambda: counter.exists() and len(counter.read_text()) >= 4)
    finally:
        os.killpg(supervisor.pid, signal.SIGTERM)
        supervisor.wait(timeout=10)

    log = (tmp_path / "out.log").read_text()
    assert "exited with 3" in log
    assert "restarting in 0.1s" in log
    assert "restarting in 0.2s" in log
    assert "restarting in 0.4s" in log


def test_sigterm_to_the_group_stops_child_and_supervisor_without_restart(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "child.pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    supervisor = _supervise(tmp_path, child)
    _wait_for(pid_file.exists)
    child_pid = int(pid_file.read_text())

    os.killpg(supervisor.pid, signal.SIGTERM)

    assert supervisor.wait(timeout=10) == 0
    _wait_for(lambda: not Path(f"/proc/{child_pid}").exists() or
              Path(f"/proc/{child_pid}/stat").read_text().split()[2] == "Z")
    assert "restarting" not in (tmp_path / "out.log").read_text()
