"""`python -m omc_proj_mysql` as a real process, and the projector through MySQL outages.

The process reads fresh topics through OMC_PROJ_MYSQL_TOPICS and writes a fresh database
through OMC_MYSQL_DATABASE; outages use a private MariaDB of the test's own (never the shared
one).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from omc_config import Settings
from omc_proj_mysql.projector import InfrastructureFailure
from omc_stack import Stack
from omc_stack.components import MariaDB
from tests.integration.test_proj_mysql_support import (
    History,
    Log,
    caught_up,
    dump,
    environment,
    free_port,
    fresh_database,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def log(stack, settings: Settings, fresh_topic) -> Log:
    return Log.fresh(settings, fresh_topic)


@pytest.fixture
def database(stack, settings: Settings):
    with fresh_database(settings) as name:
        yield name


def start(env: dict[str, str], *options: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "omc_proj_mysql", *options], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, timeout: float = 60, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_the_process_projects_serves_metrics_and_stops_on_sigterm(settings, log,
                                                                  database) -> None:
    log.send(History("process").world(8).records)
    env = environment(log, database)
    process = start(env)
    try:
        wait_for(lambda: caught_up(log, settings, database), what="the projection")
        url = f"http://127.0.0.1:{env['OMC_PROJ_MYSQL_METRICS_PORT']}/metrics"
        wait_for(lambda: b'omc_projector_lag_messages{' in urllib.request.urlopen(
            url, timeout=5).read(), what="the lag metric")
        metrics = urllib.request.urlopen(url, timeout=5).read().decode()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, output
    assert f'omc_projector_lag_messages{{partition="0",projection="mysql",topic="' \
           f'{log.topics["task"]}"}} 0.0' in metrics
    assert 'omc_projector_lag_seconds{projection="mysql"} 0.0' in metrics
    assert "omc_projector_events_applied_total" in metrics


def test_until_caught_up_exits_zero_with_every_row(settings, log, database) -> None:
    history = History("caught").world(8)
    log.send(history.records)

    finished = subprocess.run([sys.executable, "-m", "omc_proj_mysql", "--until-caught-up"],
                              env=environment(log, database), capture_output=True, text=True,
                              timeout=120)

    assert finished.returncode == 0, finished.stderr
    assert caught_up(log, settings, database)
    assert len(dump(settings, database)["task_events"]) == sum(
        1 for r in history.records if r.meta.aggregate_type == "task" and r.meta.sequence)


@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("OMC_PROJ_MYSQL_METRICS_PORT", "eighty", "OMC_PROJ_MYSQL_METRICS_PORT='eighty' is not an "
                                              "integer from 1 to 65535"),
    ("OMC_PROJ_MYSQL_METRICS_PORT", "70000", "OMC_PROJ_MYSQL_METRICS_PORT='70000' is not an "
                                             "integer from 1 to 65535"),
    ("OMC_PROJ_MYSQL_TOPICS", "a,b c", "OMC_PROJ_MYSQL_TOPICS: 'b c' is not a Kafka topic"),
])
def test_invalid_settings_exit_2_naming_the_variable(log, database, variable, value,
                                                     problem) -> None:
    env = environment(log, database, **{variable: value})

    finished = subprocess.run([sys.executable, "-m", "omc_proj_mysql"], env=env,
                              capture_output=True, text=True, timeout=60)

    assert finished.returncode == 2
    assert problem in finished.stderr


def test_a_taken_metrics_port_is_a_clear_error(log, database) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = environment(log, database, OMC_PROJ_MYSQL_METRICS_PORT=str(taken.getsockname()[1]))
        finished = subprocess.run([sys.executable, "-m", "omc_proj_mysql"], env=env,
                                  capture_output=True, text=True, timeout=60)

    assert finished.returncode == 1
    assert "error: metrics endpoint 127.0.0.1:" in finished.stderr


def test_the_process_exits_non_zero_when_mysql_stays_down(log, database) -> None:
    log.send(History("down").world(2).records)
    env = environment(log, database, OMC_MYSQL_PORT=str(free_port()),
                      OMC_PROJ_MYSQL_RETRIES="2")

    started = time.monotonic()
    finished = subprocess.run([sys.executable, "-m", "omc_proj_mysql"], env=env,
                              capture_output=True, text=True, timeout=120)

    assert finished.returncode == 1
    assert "kept failing after 2 retries" in finished.stderr
    assert time.monotonic() - started < 60


def test_tables_never_migrated_are_named_as_the_problem(settings, log) -> None:
    log.send(History("bare").world(1).records)
    with fresh_database(settings, migrate=False) as bare:
        finished = subprocess.run([sys.executable, "-m", "omc_proj_mysql"],
                                  env=environment(log, bare), capture_output=True, text=True,
                                  timeout=120)

    assert finished.returncode == 1
    assert "run `omc db migrate` first" in finished.stderr


# -- outages of a private MariaDB ---------------------------------------------------------------


@pytest.fixture
def private_mysql(tmp_path: Path):
    env = {"OMC_STACK_DIR": str(tmp_path / "stack"), "OMC_MYSQL_PORT": str(free_port()),
           "OMC_STACK_START_TIMEOUT": "60"}
    private = Settings.from_env(env)
    stack = Stack(private, report=lambda line: None, components=[MariaDB])
    stack.up()
    yield stack, private
    stack.down()


def test_a_mysql_outage_is_retried_and_nothing_is_lost_or_doubled(settings, log,
                                                                   private_mysql) -> None:
    stack, private = private_mysql
    first, second = History("outage-a").world(8), History("outage-b").world(8)
    log.send(first.records)
    with fresh_database(private) as database:
        projector = log.projector(database, mysql=private, retries=40, backoff=0.2,
                                  max_backoff=1.0)
        stop, failure = threading.Event(), []

        def run() -> None:
            try:
                projector.run(stop.is_set)
            except Exception as error:  # reported to the test thread
                failure.append(error)

        worker = threading.Thread(target=run)
        worker.start()
        try:
            wait_for(lambda: caught_up(log, private, database), what="the first half")
            stack.down(["mariadb"])
            log.send(second.records)
            wait_for(lambda: sum(s.value for m in projector.metrics.retries.collect()
                                 for s in m.samples if s.name.endswith("_total")) >= 1,
                     what="a retry")
            stack.up(["mariadb"])
            wait_for(lambda: caught_up(log, private, database), what="recovery", timeout=120)
        finally:
            stop.set()
            worker.join(timeout=60)
        got = dump(private, database)

    assert failure == []
    with fresh_database(settings) as fresh:
        again = log.projector(fresh)
        try:
            log.project(again, fresh)
        finally:
            again.close()
        assert dump(settings, fresh) == got


def test_run_gives_up_when_mysql_stays_down(log, private_mysql) -> None:
    stack, private = private_mysql
    log.send(History("gone").world(1).records)
    with fresh_database(private) as database:
        stack.down(["mariadb"])
        projector = log.projector(database, mysql=private, retries=2, backoff=0.1)
        started = time.monotonic()
        with pytest.raises(InfrastructureFailure, match="kept failing after 2 retries"):
            projector.run(lambda: False)
        stack.up(["mariadb"])

    assert time.monotonic() - started < 60
