"""What every component of the local stack provides to the `Stack` that runs it."""

from __future__ import annotations

import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from omc_config import Settings
from omc_config.settings import REPO_ROOT
from omc_stack.install import Installer

DEPLOY_DIR = REPO_ROOT / "deploy"


def http_ok(url: str) -> None:
    """Return when GET `url` answers 200; raise `NotReady` otherwise."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL
            status = response.status
    except (urllib.error.URLError, OSError) as error:
        raise NotReady(f"GET {url}: {error}") from error
    if status != 200:
        raise NotReady(f"GET {url} answered {status}")


class NotReady(Exception):
    """A readiness probe did not get its answer (yet)."""


class Component(ABC):
    """One server of the local stack, started as a foreground process under `.stack/<name>`.

    Subclasses say how to install, prepare, start and probe it. Every command they return
    must mention a path under the stack directory: that is how the stack recognises its own
    processes (see `process.is_owned`).
    """

    name: str
    stop_grace: float = 15.0

    def __init__(self, settings: Settings, installer: Installer) -> None:
        self.settings = settings
        self.installer = installer

    @property
    def dir(self) -> Path:
        return self.settings.stack.dir / self.name

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.dir / f"{self.name}.pid"

    @abstractmethod
    def ports(self) -> dict[str, int]:
        """The loopback ports it listens on, by the setting that chooses each."""

    def install(self) -> None:  # noqa: B027 - optional step
        """Make sure its binaries and artifacts exist (may install them)."""

    def prepare(self) -> None:  # noqa: B027 - optional step
        """One-time initialisation before the first start (idempotent)."""

    @abstractmethod
    def command(self) -> list[str]:
        """The foreground command that runs it."""

    def env(self) -> dict[str, str] | None:
        """Extra environment for its process (None: inherit `omc`'s environment as is)."""
        return None

    @abstractmethod
    def probe(self) -> None:
        """Return when it answers a real request; raise `NotReady` otherwise. Quick."""

    def after_ready(self) -> None:  # noqa: B027 - optional step
        """Idempotent set-up once it is ready (users, databases)."""

    @abstractmethod
    def address(self) -> dict[str, Any]:
        """Where clients reach it: `bootstrap`, `host`/`port` or `url`, as fits."""
