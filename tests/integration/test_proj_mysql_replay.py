"""Rebuilding the MySQL projection from offset 0: equal to the live one byte for byte (row
digests and CHECKSUM TABLE), swapped in atomically (also under a running projector), and
"state as of" a time or a message into omc_asof_<time>; `omc replay mysql` and `omc db
migrate` from the shell."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from omc_config import Settings
from omc_config.settings import REPO_ROOT
from omc_proj_mysql import queries, replay
from omc_proj_mysql.tables import ROWS
from omc_store.mysql import connect
from tests.integration.test_proj_mysql_support import (
    History,
    Log,
    dump,
    fresh_database,
    offsets,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def log(stack, settings: Settings, fresh_topic) -> Log:
    return Log.fresh(settings, fresh_topic)


@pytest.fixture
def database(stack, settings: Settings):
    with fresh_database(settings) as name:
        yield name


def live(log: Log, database: str, history: History) -> None:
    log.send(history.records)
    projector = log.projector(database)
    try:
        log.project(projector, database)
    finally:
        projector.close()


def databases(settings: Settings, pattern: str) -> set[str]:
    connection = connect(settings, "")
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME "
                       "LIKE %s", (pattern,))
        return {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()


def drop(settings: Settings, name: str) -> None:
    replay.drop_database(settings, name)


def test_a_replay_equals_the_live_projection_byte_for_byte_and_is_swapped_in(
        settings, log, database) -> None:
    live(log, database, History("equal").world(40))
    before = dump(settings, database)

    report = replay.replay(settings, database=database, topics=log.names)

    assert report.differences == []
    assert report.rebuilt == report.live
    assert report.swapped
    assert set(report.rebuilt) == {table.name for table in ROWS}
    assert report.rebuilt["task_events"].rows > 200
    assert report.rebuilt["tasks"].checksum not in (None, 0)
    assert dump(settings, database) == before
    assert not databases(settings, f"{database}\\_shadow\\_%")
    assert not databases(settings, f"{database}\\_old\\_%")


def test_a_replay_skips_the_rows_mysql_refuses_as_the_live_projector_did(
        settings, log, database) -> None:
    history = History("refused").world(8)
    agent = history.records[1]  # AgentRegistered, with a tenant too long for its column
    history.records[1] = dataclasses.replace(agent, meta=dataclasses.replace(
        agent.meta, tenant="t" * 300))
    live(log, database, history)

    report = replay.replay(settings, database=database, topics=log.names, swap=False)

    assert report.differences == []
    assert report.rebuilt["agents"].rows == 4  # the refused one is a placeholder's PolicySet


def test_a_replay_finds_a_row_changed_by_hand(settings, log, database) -> None:
    live(log, database, History("tamper").world(8))
    connection = connect(settings, database)
    connection.cursor().execute("UPDATE tasks SET instruction = 'changed' LIMIT 1")
    connection.commit()
    connection.close()

    report = replay.replay(settings, database=database, topics=log.names, swap=False)

    assert [d.split(":")[0] for d in report.differences] == ["tasks"]
    assert report.live["tasks"].rows == report.rebuilt["tasks"].rows
    assert report.live["tasks"].digest != report.rebuilt["tasks"].digest
    assert not report.swapped
    assert not databases(settings, f"{database}\\_shadow\\_%")


def test_the_swap_is_safe_while_the_live_projector_runs(settings, log, database) -> None:
    first, second = History("run-a").world(8), History("run-b").world(8)
    log.send(first.records)
    projector = log.projector(database)
    try:
        log.project(projector, database)
        log.send(second.records)
        # The rebuild covers both halves; the live projector has not seen the second yet:
        # after the swap it must notice its offsets moved and carry on from the database's.
        report = replay.replay(settings, database=database, topics=log.names)
        assert report.swapped
        log.project(projector, database)
        # And the other way round: the live projector ahead of what is swapped in.
        behind = f"{database}_behind"
        replay.create_database(settings, behind)
        ends = {key: high // 2 for key, high in log.watermarks().items()}
        replay.rebuild(settings, behind, ends, codec=log.codec)
        replay.swap_in(settings, database, behind, f"{database}_old")
        drop(settings, behind)
        drop(settings, f"{database}_old")
        assert offsets(settings, database) != {k: h for k, h in log.watermarks().items() if h}
        log.project(projector, database)
    finally:
        projector.close()
    got = dump(settings, database)

    with fresh_database(settings) as fresh:
        live(log, fresh, History("unused"))
        assert dump(settings, fresh) == got


def test_state_as_of_a_time_or_a_message_goes_to_a_database_of_its_own(
        settings, log, database) -> None:
    first, second = History("asof-a").world(8), History("asof-b").world(8)
    log.send(first.records)
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    log.send(second.records)
    made: list[str] = []
    try:
        by_time = replay.replay(settings, database=database, topics=log.names,
                                until=moment.isoformat().replace("+00:00", "Z"))
        made.append(by_time.database)
        task_topic = log.topics["task"]
        by_message = replay.replay(settings, database=database, topics=log.names,
                                   until=f"{task_topic}/0@2")
        made.append(by_message.database)

        assert by_time.database.startswith("omc_asof_")
        assert by_time.database in databases(settings, "omc\\_asof\\_%")
        assert not by_time.swapped
        connection = connect(settings, by_time.database)
        tasks = queries.list_tasks(connection, "acme", limit=200).items + \
            queries.list_tasks(connection, "globex", limit=200).items
        connection.close()
        assert len(tasks) == 8
        assert {t["instruction"] for t in tasks} == {f"task {n}: pay 1 wei" for n in range(8)}
        assert offsets(settings, by_message.database)[(task_topic, 0)] == 3
        with pytest.raises(replay.ReplayError):
            replay.replay(settings, database=database, topics=log.names, until="yesterday")
    finally:
        for name in made:
            drop(settings, name)


def _omc(settings: Settings, log: Log, database: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMC_MYSQL_DATABASE": database,
           "OMC_PROJ_MYSQL_TOPICS": ",".join(log.names)}
    command = [sys.executable, "-c", "from omc_cli.main import cli; cli()", *args]
    return subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)


def test_omc_db_migrate_and_omc_replay_mysql_from_the_shell(settings, log) -> None:
    with fresh_database(settings, migrate=False) as database:
        migrated = _omc(settings, log, database, "db", "migrate")
        again = _omc(settings, log, database, "db", "migrate")
        live(log, database, History("shell").world(8))
        replayed = _omc(settings, log, database, "replay", "mysql")
        asof = _omc(settings, log, database, "replay", "mysql", "--until",
                    f"{log.topics['task']}/0@0")
        bad = _omc(settings, log, database, "replay", "mysql", "--until", "soon")

    assert migrated.returncode == 0, migrated.stderr
    assert "proj_mysql: applied version 1 (read_model)" in migrated.stdout
    assert "proj_mysql: up to date" in again.stdout
    assert replayed.returncode == 0, replayed.stderr
    assert "swapped the rebuilt tables in" in replayed.stdout
    assert "  tasks: " in replayed.stdout
    assert "DIFFERS" not in replayed.stdout
    name = asof.stdout.strip().splitlines()[-1]
    drop(settings, name)
    assert asof.returncode == 0, asof.stderr
    assert name.startswith("omc_asof_")
    assert bad.returncode == 1
    assert "neither an RFC 3339 time" in bad.stderr


def test_partitions_that_split_by_key_are_rebuilt_by_several_processes_equal_to_live(
        settings, fresh_topic) -> None:
    log = Log.fresh(settings, fresh_topic, partitions={"commands": 2, "task": 2, "agent": 2,
                                                      "tx": 2})
    said: list[str] = []
    with fresh_database(settings) as database:
        live(log, database, History("groups").world(24))
        ends = {key: high for key, high in log.watermarks().items()}

        groups = replay.partition_groups(settings, ends)
        report = replay.replay(settings, database=database, topics=log.names, swap=False,
                               codec=log.codec, progress=said.append)

    assert [sorted(p for _, p in group) for group in groups] == [[0] * 5, [1] * 4]
    assert any("2 processes" in line for line in said), said
    assert not any("one process" in line for line in said), said
    assert report.differences == []
    assert report.rebuilt["task_events"].rows > 100


def test_groups_that_share_a_row_are_refused_and_the_rebuild_starts_again_in_one(
        settings, fresh_topic) -> None:
    log = Log.fresh(settings, fresh_topic, partitions={"commands": 1, "task": 1, "agent": 1,
                                                      "tx": 1})
    with fresh_database(settings) as database, fresh_database(settings) as target:
        live(log, database, History("overlap").world(6))
        ends = {key: high for key, high in log.watermarks().items()}
        commands = {key: end for key, end in ends.items() if key[0] == log.topics["commands"]}
        others = {key: end for key, end in ends.items() if key not in commands}

        with pytest.raises(replay.Overlap):  # a task's command and events split apart
            replay._parallel(settings, target, [commands, others], log.codec, 500, print)
        replay.empty(settings, target)
        replay.rebuild(settings, target, ends, codec=log.codec)

        assert dump(settings, target) == dump(settings, database)
