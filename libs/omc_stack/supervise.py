"""Keep one service process running: restart it when it dies, with exponential backoff.

    python -m omc_stack.supervise --name gateway -- python -m omc_gateway

The stack starts services through this wrapper, in their own process group; `omc down`
signals the group, the child and this wrapper stop together, and nothing is restarted. A
child that ran for `--stable-after` seconds is considered healthy again, so the backoff
starts over at its next crash. Every restart is logged with the exit status.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime


def _log(name: str, message: str) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"[{stamp}] supervise {name}: {message}", flush=True)


def supervise(name: str, command: list[str], *, initial: float = 1.0, ceiling: float = 30.0,
              stable_after: float = 60.0) -> int:
    """Run `command` until a SIGTERM or SIGINT arrives; returns the exit status to use."""
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = initial
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)
        _log(name, f"started pid {child.pid}: {' '.join(command)}")
        code = child.wait()
        if stopping:
            _log(name, f"stopped (exit {code})")
            return 0
        ran = time.monotonic() - started
        if ran >= stable_after:
            delay = initial
        _log(name, f"exited with {code} after {ran:.1f}s; restarting in {delay:g}s")
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not stopping:
            time.sleep(0.1)
        if stopping:
            return 0
        delay = min(delay * 2, ceiling)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--initial-backoff", type=float, default=1.0)
    parser.add_argument("--max-backoff", type=float, default=30.0)
    parser.add_argument("--stable-after", type=float, default=60.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to supervise after --")
    return supervise(args.name, command, initial=args.initial_backoff, ceiling=args.max_backoff,
                     stable_after=args.stable_after)


if __name__ == "__main__":
    sys.exit(main())
