"""kill -9 the MySQL projector process mid-run, five times, and lose or double nothing.

A load of thousands of sealed events goes to fresh topics; `python -m omc_proj_mysql` projects
it into a fresh database in small batches and is killed with SIGKILL each time it has made
another seventh of the way (it is busy in a batch nearly all the time), then restarted. After
the last restart it runs until caught up. The tables must then equal a fresh replay of the same
log, table by table (row digests and CHECKSUM TABLE), and hold every event exactly once.
"""

# ruff: noqa: F811 (fixtures imported from the integration conftest)

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from omc_config import Settings
from omc_proj_mysql import replay
from omc_proj_mysql.tables import ROWS
from omc_store.mysql import connect
from tests.integration.conftest import fresh_topic, kafka_admin, stack  # noqa: F401
from tests.integration.test_proj_mysql_support import (
    History,
    Log,
    caught_up,
    dump,
    environment,
    fresh_database,
    offsets,
)

pytestmark = pytest.mark.integration
KILLS = 5


def count(settings: Settings, database: str, sql: str) -> int:
    connection = connect(settings, database)
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        return int(cursor.fetchone()[0])
    finally:
        connection.close()


def test_killed_five_times_mid_batch_the_tables_equal_a_fresh_replay(
        stack, settings: Settings, fresh_topic) -> None:
    log = Log.fresh(settings, fresh_topic)
    history = History("kill").world(1000)
    log.send(history.records)
    total = sum(log.watermarks().values())
    assert total > 10_000
    with fresh_database(settings) as database:
        env = environment(log, database, OMC_PROJ_MYSQL_BATCH="200",
                          OMC_PROJ_MYSQL_INSTANCE_ID="kill-test")
        killed_at = []
        for kill in range(1, KILLS + 1):
            process = subprocess.Popen([sys.executable, "-m", "omc_proj_mysql"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            target = total * kill // (KILLS + 2)
            deadline = time.monotonic() + 120
            while sum(offsets(settings, database).values()) < target:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "no progress"
                time.sleep(0.02)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            process.stderr.close()
            killed_at.append(sum(offsets(settings, database).values()))
        finished = subprocess.run([sys.executable, "-m", "omc_proj_mysql",
                                   "--until-caught-up"], env=env, capture_output=True,
                                  text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr
        assert caught_up(log, settings, database)
        assert killed_at == sorted(killed_at)
        assert killed_at[-1] < total
        projected = dump(settings, database)

        with fresh_database(settings) as fresh:
            replay.rebuild(settings, fresh, log.watermarks(), codec=log.codec)
            connection = connect(settings, database)
            try:
                live = replay.digests(connection, database, ROWS)
                rebuilt = replay.digests(connection, fresh, ROWS)
            finally:
                connection.close()
            assert rebuilt == live
            assert dump(settings, fresh) == projected

        chained_task_events = {r.meta.event_id for r in history.records
                               if r.meta.aggregate_type == "task" and r.meta.sequence}
        assert count(settings, database, "SELECT COUNT(*) FROM task_events") == \
            len(chained_task_events)
        assert count(settings, database, "SELECT COUNT(DISTINCT event_id) FROM task_events") \
            == len(chained_task_events)
        assert count(settings, database, "SELECT COUNT(*) FROM tasks") == 1000
        assert count(settings, database, "SELECT COUNT(*) FROM transactions") == sum(
            1 for r in history.records if r.SCHEMA == "omc.tx.TxRequested")
        assert count(settings, database, "SELECT COUNT(*) FROM tasks WHERE status "
                                         "= 'accepted'") == 0
