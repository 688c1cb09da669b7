"""`omc stack` lifecycle on a private stack (its own directory and ports, Redis only).

Real processes throughout: the stack starts redis-server, these tests kill it, occupy its
port, corrupt its data, and check what the stack says and does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omc_config import Settings
from omc_errors import ComponentFailed, PortInUse, StackError
from omc_stack import Stack, process
from omc_stack.components import SERVICES, Redis


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def private_env(tmp_path: Path) -> dict[str, str]:
    return {"OMC_STACK_DIR": str(tmp_path / "stack"), "OMC_REDIS_PORT": str(_free_port()),
            "OMC_STACK_START_TIMEOUT": "20"}


@pytest.fixture
def private_stack(private_env: dict[str, str]):
    lines: list[str] = []
    stack = Stack(Settings.from_env(private_env), report=lines.append, components=[Redis])
    stack.lines = lines
    yield stack
    stack.down()


def _pid(stack: Stack) -> int | None:
    (status,) = stack.status()
    return status.pid


def _our_processes(marker: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and process.is_owned(int(p.name), marker)]


def test_up_twice_keeps_the_same_process(private_stack: Stack) -> None:
    (first,) = private_stack.up()
    (second,) = private_stack.up()

    assert first.running
    assert first.ready
    assert second.pid == first.pid
    assert f"redis: already running (pid {first.pid})" in private_stack.lines


def test_a_killed_component_is_reported_down_and_up_restarts_it(private_stack: Stack) -> None:
    (started,) = private_stack.up()

    os.kill(started.pid, signal.SIGKILL)
    time.sleep(0.3)
    (after_kill,) = private_stack.status()
    (restarted,) = private_stack.up()

    assert not after_kill.running
    assert not after_kill.ready
    assert "stale pid file" in after_kill.detail
    assert restarted.ready
    assert restarted.pid != started.pid


def test_down_leaves_no_process_of_the_stack(private_stack: Stack) -> None:
    (started,) = private_stack.up()

    private_stack.down()

    assert process.command_line(started.pid) is None
    assert _our_processes(private_stack.marker) == []
    assert not Path(private_stack.components["redis"].pid_path).exists()


def test_a_taken_port_is_named_with_its_owner_and_the_setting_to_change(
    private_stack: Stack,
) -> None:
    port = private_stack.settings.stack.redis_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()

        with pytest.raises(PortInUse) as raised:
            private_stack.up()

    message = str(raised.value)
    assert f"port {port} (OMC_REDIS_PORT) is already in use" in message
    assert f"pid {os.getpid()}" in message
    assert "export OMC_REDIS_PORT=" in message


def test_a_component_dying_on_start_is_reported_with_its_log_tail(private_stack: Stack) -> None:
    redis_dir = private_stack.components["redis"].dir
    redis_dir.mkdir(parents=True)
    (redis_dir / "dump.rdb").write_bytes(b"REDIS0011 this is not a valid snapshot")

    with pytest.raises(ComponentFailed) as raised:
        private_stack.up()

    message = str(raised.value)
    assert "redis exited with code" in message
    assert "dump.rdb" in message or "RDB" in message  # redis' own words, from its log
    assert "omc stack up redis" in message
    assert not private_stack.components["redis"].pid_path.exists()


def test_a_stale_pid_file_is_removed_and_the_component_started(private_stack: Stack) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    component = private_stack.components["redis"]
    component.dir.mkdir(parents=True)
    process.PidFile(component.pid_path).write(dead.pid, ["redis-server"])

    (status,) = private_stack.up()

    assert status.ready
    assert status.pid != dead.pid
    assert any(f"named pid {dead.pid}, which is not running" in line
               for line in private_stack.lines)


def test_down_never_signals_a_process_the_stack_did_not_start(private_stack: Stack) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        component = private_stack.components["redis"]
        component.dir.mkdir(parents=True)
        process.PidFile(component.pid_path).write(bystander.pid, ["redis-server"])

        private_stack.down()

        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_unknown_component_names_the_known_ones(private_stack: Stack) -> None:
    with pytest.raises(StackError, match="unknown component 'zookeeper'; the stack has: redis"):
        private_stack.up(["zookeeper"])


def _omc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    omc = Path(sys.executable).with_name("omc")
    return subprocess.run([str(omc), *args], capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_status_json_reports_every_component_of_the_running_stack(stack, settings) -> None:
    result = _omc("stack", "status", "--json")

    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    infrastructure = {"kafka", "registry", "mariadb", "redis", "anvil"}
    services = {service.name for service in SERVICES}
    assert infrastructure <= set(status) <= infrastructure | services
    assert all(status[name]["running"] and status[name]["ready"] for name in infrastructure)
    assert status["kafka"]["bootstrap"] == settings.kafka_bootstrap
    assert (status["mariadb"]["host"], status["mariadb"]["port"]) == ("127.0.0.1", 13306)
    assert status["redis"]["url"] == settings.redis_url
    assert status["anvil"]["url"] == settings.chain_rpc_url
    assert status["registry"]["url"] == settings.schema_registry_url


def test_status_of_a_stopped_stack_says_not_running_and_exits_3(private_env) -> None:
    result = _omc("stack", "status", "--json", "redis", env=private_env)

    assert result.returncode == 3
    assert json.loads(result.stdout)["redis"]["running"] is False


def test_up_of_the_running_stack_is_a_no_op(stack) -> None:
    before = {s.name: s.pid for s in stack.status()}

    result = _omc("stack", "up")

    assert result.returncode == 0, result.stderr
    assert "already running" in result.stderr
    assert {s.name: s.pid for s in stack.status()} == before


def test_a_bad_setting_is_a_clear_error_not_a_traceback() -> None:
    result = _omc("stack", "status", env={"OMC_KAFKA_PORT": "not-a-port"})

    assert result.returncode == 1
    assert "OMC_KAFKA_PORT='not-a-port' is not a port number" in result.stderr
    assert "Traceback" not in result.stderr
