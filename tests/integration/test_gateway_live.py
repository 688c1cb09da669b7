"""The live stream (SSE) end to end: sealed task events on fresh topics, projected into a
fresh Redis key prefix by the Redis projector running in a thread, streamed by the gateway
(the real composition root, in-process) to each tenant's key."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from confluent_kafka import Consumer
from confluent_kafka.admin import NewTopic
from starlette.testclient import TestClient

from omc_config import Settings
from omc_events import records as r
from omc_gateway import apikeys
from omc_gateway.settings import GatewaySettings
from omc_gateway.wiring import build
from omc_kafka.consumer import consumer_config
from omc_kafka.deadletter import DeadLetters
from omc_proj_redis import queries
from omc_proj_redis.keys import Keys
from omc_proj_redis.projector import Projector
from tests.integration.test_gateway import make_keys
from tests.integration.test_proj_mysql_support import History, Log, fresh_database
from tests.unit.test_gateway_app import sse

pytestmark = pytest.mark.integration


class Live:
    def __init__(self, client: TestClient, auth: dict, history: History, log: Log,
                 tasks: dict[str, str]) -> None:
        self.client, self.auth, self.history, self.log, self.tasks = (client, auth, history,
                                                                      log, tasks)

    def stream(self, task: str, tenant: str = "acme", **headers: str):
        return self.client.get(f"/v1/tasks/{self.tasks[task]}/stream",
                               headers={**self.auth[tenant], **headers})


@pytest.fixture(scope="module")
def live(stack, settings: Settings, kafka_admin) -> Iterator[Live]:
    created: list[str] = []

    def fresh_topic(partitions: int = 1) -> str:
        name = f"omc.test.{uuid.uuid4().hex[:12]}"
        kafka_admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
        created.append(name)
        return name

    history = History("live")
    agent = history.agent("acme", 0)
    tasks = {"done": history.task("acme", agent, 1, "completed"),
             "waiting": history.task("acme", agent, 2, "waiting")}
    log = Log.fresh(settings, fresh_topic)
    log.send(history.records)
    prefix = f"omc:test:{uuid.uuid4().hex[:10]}"
    group = f"omc.test.proj.redis.{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.redis_url)
    projector = Projector(
        client, lambda: Consumer(consumer_config(settings, group)), log.codec,
        DeadLetters(log.producer, group, topic=log.dead), keys=Keys(prefix),
        commands_topic=log.topics["commands"], events_topic=log.topics["task"],
        poll_timeout=0.1)
    projector.start()
    stop = threading.Event()
    worker = threading.Thread(target=projector.run, args=(stop.is_set,), daemon=True)
    worker.start()
    try:
        with fresh_database(settings, migrate=False) as database:
            env = {**os.environ, "OMC_MYSQL_DATABASE": database,
                   "OMC_PROJ_REDIS_PREFIX": prefix, "OMC_GATEWAY_SSE_KEEPALIVE": "0.5"}
            apikeys.migrate(Settings.from_env(env))
            tokens = make_keys(settings, database, ("acme", "globex"))
            auth = {t: {"Authorization": f"Bearer {tokens[t]}"} for t in ("acme", "globex")}
            with TestClient(build(GatewaySettings.from_env(env))) as app:
                deadline = time.monotonic() + 60
                while not all(queries.task_status(client, "acme", tasks[name], prefix=prefix)
                              for name in tasks) or queries.task_status(
                        client, "acme", tasks["done"], prefix=prefix)["status"] != "completed":
                    assert time.monotonic() < deadline, "the Redis projection never caught up"
                    time.sleep(0.2)
                yield Live(app, auth, history, log, tasks)
    finally:
        stop.set()
        worker.join(timeout=30)
        projector.close()
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()
        for future in kafka_admin.delete_topics(created).values():
            future.result(timeout=30)


def test_a_finished_task_streams_from_the_beginning_and_ends(live: Live) -> None:
    answer = live.client.get(f"/v1/tasks/{live.tasks['done']}/stream?from=beginning",
                             headers=live.auth["acme"])

    frames = sse(answer.text)
    assert [int(f["id"]) for f in frames] == list(range(1, len(frames) + 1))
    assert frames[0]["event"] == "omc.task.TaskSubmitted"
    assert frames[-1]["event"] == "omc.task.TaskCompleted"
    first = json.loads(frames[0]["data"])
    assert first["sequence"] == 1
    assert first["payload"]["task_id"] == live.tasks["done"]


def test_from_now_on_a_finished_task_ends_at_once_and_resume_skips_what_was_seen(
        live: Live) -> None:
    now = live.stream("done")
    resumed = live.stream("done", **{"Last-Event-ID": "2"})

    assert sse(now.text) == []
    assert int(sse(resumed.text)[0]["id"]) == 3


def test_another_tenants_task_is_404(live: Live) -> None:
    answer = live.stream("done", tenant="globex")

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_waiting_task_streams_its_next_events_as_they_happen(live: Live) -> None:
    task = live.tasks["waiting"]
    frames: list[str] = []
    opened = threading.Event()

    def follow() -> None:
        with live.client.stream("GET", f"/v1/tasks/{task}/stream",
                                headers=live.auth["acme"]) as answer:
            opened.set()
            for line in answer.iter_lines():
                frames.append(line)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert opened.wait(30)
    time.sleep(1.5)  # a keep-alive or two while nothing happens
    cancelled = live.history.make(r.TaskCancelled, "task", task, "acme", task_id=task,
                                  reason="no longer needed", cancelled_by="key:abc")
    live.log.send([cancelled])
    reader.join(timeout=60)

    assert not reader.is_alive(), "the stream ends after the terminal event"
    text = "\n".join(frames) + "\n\n"
    assert ": keep-alive" in text
    (frame,) = sse(text)
    assert frame["event"] == "omc.task.TaskCancelled"
    assert int(frame["id"]) == cancelled.meta.sequence
