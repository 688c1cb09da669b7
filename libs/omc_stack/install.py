"""Finding, and when allowed installing, what the stack runs on.

Debian packages are installed with apt-get when running as root; otherwise the error gives
the exact command to run. Project-pinned artifacts (Kafka's jars from Maven Central, anvil
from npm) are fetched into the stack directory by the package manager, whose own cache
(~/.m2, ~/.npm) makes the next fetch fast, and a stamp of the pinning file avoids refetching.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from omc_errors import MissingDependency

SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


class Installer:
    """Locates binaries and installs missing ones; one instance per `omc` invocation."""

    def __init__(self, report: Callable[[str], None], *, may_install: bool | None = None) -> None:
        self.report = report
        self.may_install = os.geteuid() == 0 if may_install is None else may_install
        self._apt_updated = False

    def binary(self, name: str, package: str) -> str:
        """Absolute path of `name`, installing Debian `package` when it is missing."""
        found = find_binary(name)
        if found:
            return found
        self.apt_install(package, reason=f"'{name}' is not installed")
        found = find_binary(name)
        if not found:
            raise MissingDependency(f"installed {package} but '{name}' is still not on PATH")
        return found

    def apt_install(self, package: str, *, reason: str) -> None:
        command = ["apt-get", "install", "-y", "--no-install-recommends", package]
        if not (self.may_install and shutil.which("apt-get")):
            raise MissingDependency(
                f"{reason}. Install it with:\n    sudo apt-get update && sudo {' '.join(command)}"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if not self._apt_updated:
            self.report(f"installing {package} ({reason}): apt-get update")
            self.run(["apt-get", "update", "-qq"], env=env, what="apt-get update")
            self._apt_updated = True
        self.report(f"installing {package}: {' '.join(command)}")
        self.run([*command, "-qq"], env=env, what=f"apt-get install {package}")

    def fetched(self, target: Path, pin: Path, fetch: Sequence[str], *, what: str,
                copy_pin: bool = False) -> None:
        """Run `fetch` in `target` to fill it, unless it was already filled from this `pin`.

        With `copy_pin` the pin file is copied into `target` first (npm reads package.json
        from its working directory).
        """
        stamp = target / ".omc-pin"
        digest = hashlib.sha256(pin.read_bytes()).hexdigest()
        if stamp.is_file() and stamp.read_text() == digest:
            return
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        if copy_pin:
            shutil.copy(pin, target / pin.name)
        self.report(f"fetching {what} (pinned in {pin.name}); cached by the package manager")
        self.run(fetch, env=dict(os.environ), what=f"fetching {what}", cwd=target)
        stamp.write_text(digest)

    @staticmethod
    def run(command: Sequence[str], *, env: dict[str, str], what: str,
             cwd: Path | None = None) -> None:
        result = subprocess.run(list(command), env=env, cwd=cwd, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise MissingDependency(
                f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{tail}"
            )


def find_binary(name: str) -> str | None:
    """`name` on PATH, or in an sbin directory (where Debian puts daemons like mariadbd)."""
    found = shutil.which(name)
    if found:
        return found
    for directory in SBIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None
