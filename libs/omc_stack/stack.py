"""The local stack: bring its components up, down, and say how they are.

`up` is idempotent: a running component is left alone, a stopped one is installed if needed,
prepared, started and awaited until it answers a real request. `down` stops only processes
the stack started (pid file plus ownership check). Every failure raises a `StackError`
subclass whose message says what happened, what to do, and shows the component's log tail.
Only one `up` or `down` runs at a time per stack directory (a file lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from omc_config import Settings
from omc_errors import ComponentFailed, PortInUse, StackError
from omc_stack import process
from omc_stack.components import COMPONENTS, SERVICES, Component, NotReady
from omc_stack.install import Installer

Report = Callable[[str], None]


@dataclass(frozen=True)
class ComponentStatus:
    """What `status` knows of one component."""

    name: str
    running: bool
    ready: bool
    pid: int | None
    address: dict[str, Any]
    log: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "ready": self.ready,
            "pid": self.pid,
            **self.address,
            "log": self.log,
            **({"detail": self.detail} if self.detail else {}),
        }


class Stack:
    """The components of one stack directory, and the operations over them."""

    def __init__(
        self,
        settings: Settings,
        *,
        report: Report = print,
        installer: Installer | None = None,
        components: Iterable[type[Component]] = COMPONENTS,
        services: Iterable[type[Component]] = SERVICES,
    ) -> None:
        self.settings = settings
        self.report = report
        self.installer = installer or Installer(report)
        self.infrastructure = [cls.name for cls in components]
        self.components = {cls.name: cls(settings, self.installer)
                           for cls in (*components, *services)}

    @property
    def marker(self) -> str:
        """Text in the command line of every process this stack starts."""
        return str(self.settings.stack.dir)

    def select(self, names: Iterable[str] | None = None) -> list[Component]:
        """Components by name, in start order; the infrastructure when `names` is empty."""
        wanted = list(names or self.infrastructure)
        unknown = [name for name in wanted if name not in self.components]
        if unknown:
            raise StackError(
                f"unknown component {', '.join(map(repr, unknown))}; "
                f"the stack has: {', '.join(self.components)}"
            )
        return [c for name, c in self.components.items() if name in wanted]

    def started(self) -> list[str]:
        """The infrastructure, and the services that have a pid file (running or not)."""
        return [name for name, c in self.components.items()
                if name in self.infrastructure or c.pid_path.exists()]

    # -- up ---------------------------------------------------------------------------------

    def up(self, names: Iterable[str] | None = None) -> list[ComponentStatus]:
        """Start what is not running, wait until everything selected is ready."""
        components = self.select(names)
        with self._lock():
            started: dict[str, subprocess.Popen] = {}
            for component in components:
                component.dir.mkdir(parents=True, exist_ok=True)
                pid = self._live_pid(component)
                if pid is not None:
                    self.report(f"{component.name}: already running (pid {pid})")
                    continue
                started[component.name] = self._start(component)
            for component in components:
                self._await_ready(component, started.get(component.name))
                component.after_ready()
        return self.status([c.name for c in components])

    def _start(self, component: Component) -> subprocess.Popen:
        self._check_ports(component)
        component.install()
        component.prepare()
        command = component.command()
        child = process.start(command, component.log_path, cwd=component.dir,
                              label=component.name, env=component.env())
        process.PidFile(component.pid_path).write(child.pid, command)
        self.report(f"{component.name}: started (pid {child.pid}), waiting until it answers")
        return child

    def _check_ports(self, component: Component) -> None:
        for setting, port in component.ports().items():
            if process.port_is_free(port):
                continue
            owner = process.port_owner(port)
            raise PortInUse(
                f"{component.name} cannot start: port {port} ({setting}) is already in use"
                f"{' by ' + owner if owner else ''}.\n"
                f"Stop that process, or give the stack another port: export {setting}=<free port>"
            )

    def _await_ready(self, component: Component, child: subprocess.Popen | None) -> None:
        timeout = self.settings.stack.start_timeout
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            exited = self._exit_code(component, child)
            if exited is not None:
                process.PidFile(component.pid_path).remove()
                raise ComponentFailed(self._failure(
                    component, f"exited with code {exited} while starting"))
            try:
                component.probe()
            except NotReady as not_ready:
                last = str(not_ready)
            else:
                if child is not None:
                    self.report(f"{component.name}: ready at {_where(component.address())}")
                return
            if time.monotonic() > deadline:
                pid = process.PidFile(component.pid_path).read()
                if pid is not None:
                    process.stop(pid, grace=component.stop_grace)
                process.PidFile(component.pid_path).remove()
                raise ComponentFailed(self._failure(
                    component, f"did not answer within {timeout:g}s (last probe: {last}); "
                               "it was stopped"))
            time.sleep(0.25)

    def _exit_code(self, component: Component, child: subprocess.Popen | None) -> str | None:
        if child is not None:
            code = child.poll()
            return None if code is None else str(code)
        pid = process.PidFile(component.pid_path).read()
        if pid is None or not process.is_owned(pid, self.marker):
            return "unknown"
        return None

    def _failure(self, component: Component, what: str) -> str:
        return (
            f"{component.name} {what}.\n"
            f"Last lines of {component.log_path}:\n"
            f"{_indent(process.log_tail(component.log_path))}\n"
            f"Fix the cause shown above, then run `omc stack up {component.name}` again "
            f"(`omc stack logs {component.name}` shows the whole log)."
        )

    # -- down -------------------------------------------------------------------------------

    def down(self, names: Iterable[str] | None = None) -> None:
        """Stop, in reverse start order, the selected components (default: every one,
        services included) that this stack started."""
        with self._lock():
            for component in reversed(self.select(names or list(self.components))):
                pid = self._live_pid(component)
                if pid is None:
                    self.report(f"{component.name}: not running")
                    continue
                killed = process.stop(pid, grace=component.stop_grace)
                process.PidFile(component.pid_path).remove()
                how = "killed after not stopping in time" if killed else "stopped"
                self.report(f"{component.name}: {how} (pid {pid})")

    # -- status -----------------------------------------------------------------------------

    def status(self, names: Iterable[str] | None = None) -> list[ComponentStatus]:
        """Running (its process is alive) and ready (it answers a request), per component
        (default: the infrastructure and every service that was started)."""
        return [self._status(component) for component in self.select(names or self.started())]

    def _status(self, component: Component) -> ComponentStatus:
        pid_file = process.PidFile(component.pid_path)
        pid = pid_file.read()
        running = pid is not None and process.is_owned(pid, self.marker)
        detail = ""
        ready = False
        if pid is not None and not running:
            detail = f"stale pid file: pid {pid} is not running; `omc stack up` starts it again"
        elif running:
            try:
                component.probe()
                ready = True
            except NotReady as not_ready:
                detail = f"running but not answering: {not_ready}"
        return ComponentStatus(
            name=component.name, running=running, ready=ready,
            pid=pid if running else None, address=component.address(),
            log=str(component.log_path), detail=detail,
        )

    # -- shared -----------------------------------------------------------------------------

    def _live_pid(self, component: Component) -> int | None:
        """The pid of the component's running process, removing a stale pid file."""
        pid_file = process.PidFile(component.pid_path)
        pid = pid_file.read()
        if pid is None:
            if pid_file.path.exists():
                self.report(f"{component.name}: removed an unreadable pid file {pid_file.path}")
                pid_file.remove()
            return None
        if process.is_owned(pid, self.marker):
            return pid
        self.report(
            f"{component.name}: its pid file named pid {pid}, which is not running "
            f"(the stack was stopped uncleanly?); removed the stale pid file"
        )
        pid_file.remove()
        return None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.settings.stack.dir.mkdir(parents=True, exist_ok=True)
        with (self.settings.stack.dir / "stack.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _where(address: dict[str, Any]) -> str:
    for key in ("url", "bootstrap"):
        if key in address:
            return str(address[key])
    return f"{address['host']}:{address['port']}"


def _indent(text: str) -> str:
    return "\n".join(f"    | {line}" for line in text.splitlines())
