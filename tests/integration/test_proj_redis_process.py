"""`python -m omc_proj_redis` as a real process, and the projector through Redis outages.

The process reads fresh topics through its OMC_PROJ_REDIS_*_TOPIC settings; outages use a
private Redis of the test's own (never the shared one).
"""


# ruff: noqa: F811 (the fixtures `log` and `registry` are imported from test_proj_redis)

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from omc_config import Settings
from omc_proj_redis.projector import InfrastructureDown, stored_offsets
from omc_stack import Stack
from omc_stack.components import Redis
from tests.integration.test_proj_redis import Log, Task, a_life, log, registry  # noqa: F401

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(log: Log, **extra: str) -> dict[str, str]:
    return {**os.environ, "OMC_PROJ_REDIS_PREFIX": log.keys.prefix,
            "OMC_PROJ_REDIS_COMMANDS_TOPIC": log.commands,
            "OMC_PROJ_REDIS_EVENTS_TOPIC": log.events,
            "OMC_PROJ_REDIS_DEADLETTER_TOPIC": log.dead,
            "OMC_PROJ_REDIS_GROUP": f"omc.test.proj.redis.{log.keys.prefix[-12:]}",
            "OMC_PROJ_REDIS_METRICS_PORT": str(free_port()), **extra}


def start(env: dict[str, str], *options: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "omc_proj_redis", *options], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, timeout: float = 60, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def caught_up(log: Log) -> bool:
    wanted = {w: high for w, high in log.watermarks().items() if high > 0}
    stored = stored_offsets(log.client, log.keys)
    return all(stored.get(w, 0) >= high for w, high in wanted.items())


def test_the_process_projects_serves_metrics_and_stops_on_sigterm(log: Log) -> None:
    tasks = [Task() for _ in range(3)]
    log.send(*[r for t in tasks for r in (t.submit(), *a_life(t))])
    env = environment(log)
    process = start(env)
    try:
        wait_for(lambda: caught_up(log), what="the process to apply everything")
        url = f"http://127.0.0.1:{env['OMC_PROJ_REDIS_METRICS_PORT']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            metrics = answer.read().decode()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read()

    assert code == 0, output
    assert '"message": "stopped"' in output
    assert 'omc_proj_redis_events_applied_total{event_type="omc.task.TaskSubmitted"} 3.0' \
        in metrics
    assert "omc_proj_redis_lag_messages{" in metrics
    assert all(log.status(t)["status"] == "awaiting_approval" for t in tasks)


def test_killed_mid_run_it_resumes_without_a_loss_or_a_double(log: Log) -> None:
    tasks = [Task() for _ in range(120)]
    log.send(*[r for t in tasks for r in (t.submit(), *a_life(t))])
    env = environment(log, OMC_PROJ_REDIS_BATCH="7")
    first = start(env)
    try:
        wait_for(lambda: sum(stored_offsets(log.client, log.keys).values()) > 100,
                 what="some progress")
    finally:
        first.kill()
        first.wait(timeout=30)
    assert not caught_up(log), "killed too late to test a resume"

    # a new group: the offsets come from Redis, not from the group the killed one held
    resumed = subprocess.run([sys.executable, "-m", "omc_proj_redis", "--until-caught-up"],
                             env={**env, "OMC_PROJ_REDIS_GROUP": env["OMC_PROJ_REDIS_GROUP"]
                                  + ".2"}, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    live = log.snapshot()
    rebuilt = subprocess.run([sys.executable, "-m", "omc_proj_redis", "--rebuild",
                              "--until-caught-up"],
                             env={**env, "OMC_PROJ_REDIS_GROUP": env["OMC_PROJ_REDIS_GROUP"]
                                  + ".3"}, capture_output=True, text=True, timeout=120)

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert log.snapshot() == live
    for task in tasks:
        _, length, last_id, added = live[log.keys.events(task.id)]
        assert (length, last_id, added) == (5, b"5-0", 5)  # every XADD once, none refused
        assert log.status(task)["last_sequence"] == "5"


def test_the_process_exits_non_zero_when_redis_stays_down(log: Log) -> None:
    log.send(*a_life(Task()))
    env = environment(log, OMC_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
                      OMC_PROJ_REDIS_RETRIES="2")

    finished = subprocess.run([sys.executable, "-m", "omc_proj_redis"], env=env,
                              capture_output=True, text=True, timeout=120)

    assert finished.returncode == 1
    assert "InfrastructureDown" in finished.stderr
    assert "giving up after 2 attempts" in finished.stderr


# -- outages of a private Redis -------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path):
    env = {"OMC_STACK_DIR": str(tmp_path / "stack"), "OMC_REDIS_PORT": str(free_port()),
           "OMC_STACK_START_TIMEOUT": "20"}
    settings = Settings.from_env(env)
    stack = Stack(settings, report=lambda line: None, components=[Redis])
    stack.up()
    yield stack, settings
    stack.down()


def test_a_redis_outage_is_retried_and_an_empty_redis_is_rebuilt_from_the_log(
        log: Log, private_redis) -> None:
    stack, private = private_redis
    log.client = redis.Redis.from_url(private.redis_url, socket_timeout=5,
                                      socket_connect_timeout=2)
    task = Task()
    life = a_life(task)
    projector = log.projector()
    stop, failure = threading.Event(), []

    def run() -> None:
        try:
            projector.run(stop.is_set, attempts=40, backoff=0.2, max_backoff=1)
        except Exception as error:  # reported to the test thread
            failure.append(error)

    worker = threading.Thread(target=run)
    log.send(task.submit(), *life[:3])
    worker.start()
    try:
        wait_for(lambda: caught_up(log), what="the first events")
        stack.down()  # Redis goes away, and comes back without its data (no persistence)
        log.send(*life[3:])
        wait_for(lambda: projector.metrics.retries._value.get() >= 1, what="a retry")
        stack.up()
        wait_for(lambda: caught_up(log), what="recovery")
    finally:
        stop.set()
        worker.join(timeout=60)

    assert failure == []
    assert log.status(task)["status"] == "awaiting_approval"
    assert [i for i, _ in log.entries(task)] == ["1-0", "2-0", "3-0", "4-0", "5-0"]


def test_run_gives_up_when_redis_stays_down(log: Log, private_redis) -> None:
    stack, private = private_redis
    log.client = redis.Redis.from_url(private.redis_url, socket_timeout=2,
                                      socket_connect_timeout=1)
    stack.down()
    log.send(*a_life(Task()))
    projector = log.projector()

    started = time.monotonic()
    with pytest.raises(InfrastructureDown, match="giving up after 3 attempts"):
        projector.run(lambda: False, attempts=3, backoff=0.1)

    assert time.monotonic() - started < 60
    assert projector.consumer is None
