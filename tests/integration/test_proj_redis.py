"""The Redis projection on the real stack: sealed events through Kafka and the registry into
Redis, read back through the gateway's queries.

Each test has fresh topics (commands, task events, dead letters; their subjects registered
under the fresh names), a fresh key prefix and a fresh consumer group. The projector runs
in-process batch by batch here; tests/integration/test_proj_redis_process.py runs it as a
process and through outages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.asyncio
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from omc_config import Settings
from omc_events.avro import Schemas
from omc_events.catalogue import Catalogue
from omc_events.chain import seal, seal_command
from omc_events.codec import Codec
from omc_events.envelope import ChainHead
from omc_events.record import Record
from omc_kafka.consumer import consumer_config
from omc_kafka.deadletter import DeadLetters
from omc_kafka.producer import EventProducer, producer_config
from omc_proj_redis import queries, view
from omc_proj_redis.__main__ import ProjectorSettings, catalogue_for
from omc_proj_redis.keys import Keys, glob_escape
from omc_proj_redis.projector import Projector, rebuild, stored_offsets
from tests.support.samples import sample

SCHEMAS = Schemas()
pytestmark = pytest.mark.integration


# -- records --------------------------------------------------------------------------------


def new_id() -> str:
    return str(uuid.uuid4())


def event(name: str, task: str, *, tenant: str = "acme", **fields) -> Record:
    record = sample(SCHEMAS.set, name, aggregate_id=task, causation=f"{task}/{name}")
    meta = dataclasses.replace(record.meta, tenant=tenant, aggregate_type="task")
    names = {f.name for f in dataclasses.fields(record)}
    extra = {"task_id": task} if "task_id" in names else {}
    return dataclasses.replace(record, meta=meta, **extra, **fields)


class Task:
    """One task's hash chain, sealed event by event."""

    def __init__(self, tenant: str = "acme") -> None:
        self.id, self.tenant, self.head = new_id(), tenant, ChainHead()

    def next(self, name: str, **fields) -> Record:
        record, self.head = seal(SCHEMAS, event(name, self.id, tenant=self.tenant, **fields),
                                 self.head)
        return record

    def submit(self) -> Record:
        return seal_command(SCHEMAS, event("omc.command.SubmitTask", self.id,
                                           tenant=self.tenant))


# -- fixtures -------------------------------------------------------------------------------


@dataclasses.dataclass
class Log:
    """Fresh topics with their subjects registered, a producer, and ways to project them."""

    settings: Settings
    codec: Codec
    commands: str
    events: str
    dead: str
    client: redis.Redis
    keys: Keys
    producer: EventProducer

    def send(self, *records: Record) -> None:
        for record in records:
            topic = self.commands if record.meta.event_type.startswith("omc.command.") \
                and record.meta.sequence == 0 else self.events
            self.producer.send(topic, record)
        self.producer.flush()

    def send_raw(self, topic: str, value: bytes, key: bytes = b"poison") -> None:
        producer = Producer(producer_config(self.settings))
        producer.produce(topic, value=value, key=key, headers=[("omc_tenant", b"acme")])
        assert producer.flush(30) == 0

    def projector(self, *, group: str | None = None, **options) -> Projector:
        group = group or f"omc.test.proj.redis.{uuid.uuid4().hex[:8]}"
        dead_letters = DeadLetters(self.producer, group, topic=self.dead)
        return Projector(
            self.client, lambda: Consumer(consumer_config(self.settings, group)), self.codec,
            dead_letters, keys=self.keys, commands_topic=self.commands,
            events_topic=self.events, **options)

    def watermarks(self) -> dict[str, int]:
        probe = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap,
                          "group.id": "omc.test.watermarks"})
        try:
            metadata = probe.list_topics(timeout=10)
            return {f"{topic}/{p}": probe.get_watermark_offsets(TopicPartition(topic, p),
                                                                timeout=10)[1]
                    for topic in (self.commands, self.events)
                    for p in metadata.topics[topic].partitions}
        finally:
            probe.close()

    def project(self, projector: Projector, timeout: float = 60) -> None:
        """Step `projector` until the offsets in Redis reach every partition's end."""
        wanted = {w: high for w, high in self.watermarks().items() if high > 0}
        deadline = time.monotonic() + timeout
        while True:
            projector.step()
            stored = stored_offsets(self.client, self.keys)
            if all(stored.get(w, 0) >= high for w, high in wanted.items()):
                return
            assert time.monotonic() < deadline, f"projected {stored}, wanted {wanted}"

    def snapshot(self) -> dict:
        """Every key of the projection as data (the offsets' wall-clock time left out)."""
        found = {}
        for raw in self.client.scan_iter(match=f"{glob_escape(self.keys.prefix)}:*"):
            key = raw.decode()
            if key == self.keys.updated_at:
                continue
            kind = self.client.type(key)
            if kind == b"hash":
                found[key] = self.client.hgetall(key)
            else:
                info = self.client.xinfo_stream(key)
                found[key] = (self.client.xrange(key), info["length"],
                              info["last-generated-id"], info["entries-added"])
        return found

    def status(self, task: Task) -> dict[str, str]:
        return {k.decode(): v.decode()
                for k, v in self.client.hgetall(self.keys.status(task.id)).items()}

    def entries(self, task: Task) -> list[tuple[str, dict]]:
        return [(i.decode(), {k.decode(): v.decode() for k, v in fields.items()})
                for i, fields in self.client.xrange(self.keys.events(task.id))]


@pytest.fixture(scope="module")
def registry(stack, settings: Settings) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": settings.schema_registry_url})


@pytest.fixture
def log(fresh_topic, registry, settings: Settings) -> Iterator[Log]:
    commands, events, dead = fresh_topic(partitions=2), fresh_topic(partitions=3), fresh_topic()
    catalogue: Catalogue = catalogue_for(ProjectorSettings.from_env({
        "OMC_PROJ_REDIS_COMMANDS_TOPIC": commands, "OMC_PROJ_REDIS_EVENTS_TOPIC": events,
        "OMC_PROJ_REDIS_DEADLETTER_TOPIC": dead}))
    for name in (commands, events, dead):
        topic = catalogue[name]
        for record in topic.records:
            registry.register_schema(topic.subject(record),
                                     Schema(SCHEMAS.set.standalone_json(record), "AVRO"))
    codec = Codec(registry, schemas=SCHEMAS, catalogue=catalogue)
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(f"omc:test:{uuid.uuid4().hex[:12]}")
    producer = EventProducer(Producer(producer_config(settings)), codec, "omc/test")
    yield Log(settings, codec, commands, events, dead, client, keys, producer)
    doomed = list(client.scan_iter(match=f"{glob_escape(keys.prefix)}:*"))
    if doomed:
        client.delete(*doomed)
    client.close()


def read_dead_letters(log: Log, count: int) -> list:
    consumer = Consumer(consumer_config(log.settings, f"omc.test.{uuid.uuid4()}"))
    consumer.subscribe([log.dead])
    letters = []
    try:
        for _ in range(60):
            letters += [log.codec.decode(m.value())
                        for m in consumer.consume(100, timeout=1) if m.error() is None]
            if len(letters) >= count:
                break
    finally:
        consumer.close()
    return letters


def a_life(task: Task, *, action: str | None = None) -> list[Record]:
    action = action or new_id()
    return [task.next("omc.task.TaskSubmitted"), task.next("omc.task.InferenceRequested"),
            task.next("omc.task.InferenceCompleted"), task.next("omc.task.ActionProposed"),
            task.next("omc.task.ApprovalRequested", action_id=action)]


# -- the projection -------------------------------------------------------------------------


def test_commands_and_events_become_a_status_hash_and_an_event_stream(log: Log) -> None:
    task, other = Task(), Task(tenant="globex")
    action = new_id()
    log.send(task.submit(), *a_life(task, action=action), other.submit())
    projector = log.projector()
    try:
        log.project(projector)
    finally:
        projector.close()

    status = log.status(task)
    assert status["status"] == "awaiting_approval"
    assert status["pending_action_id"] == action
    assert status["tenant"] == "acme"
    assert status["last_sequence"] == "5"
    assert status["last_event_type"] == "omc.task.ApprovalRequested"
    assert status["last_hash"] == task.head.hash
    assert log.status(other)["status"] == "accepted"
    assert log.status(other)["last_sequence"] == "0"

    entries = log.entries(task)
    assert [i for i, _ in entries] == ["1-0", "2-0", "3-0", "4-0", "5-0"]
    first = json.loads(entries[0][1]["event"])
    assert entries[0][1]["type"] == first["event_type"] == "omc.task.TaskSubmitted"
    assert first["topic"] == log.events
    assert first["offset"] == 0
    assert first["hash"] == json.loads(entries[1][1]["event"])["prev_hash"]
    assert first["payload"]["task_id"] == task.id
    assert log.client.exists(log.keys.events(other.id)) == 0

    assert stored_offsets(log.client, log.keys) == \
        {w: high for w, high in log.watermarks().items() if high > 0}


def test_the_status_never_moves_backwards_and_final_stays_final(log: Log) -> None:
    task = Task()
    life = a_life(task)
    completed = task.next("omc.task.TaskCompleted")
    late = task.next("omc.command.CommandRejected",
                     rejected_command_type="omc.command.CancelTask")
    log.send(*life, completed, late, *life[:2])  # the first two again, as a retry would
    projector = log.projector()
    try:
        log.project(projector)
        log.send(task.submit())  # the command read last: the task has a status already
        log.project(projector)
    finally:
        projector.close()

    status = log.status(task)
    assert status["status"] == "completed"
    assert status["last_sequence"] == "7"
    assert "pending_action_id" not in status
    assert [i for i, _ in log.entries(task)] == [f"{n}-0" for n in range(1, 8)]


def test_replaying_the_same_messages_changes_nothing(log: Log) -> None:
    tasks = [Task() for _ in range(4)]
    sent = [r for t in tasks for r in (t.submit(), *a_life(t))]
    log.send(*sent)
    projector = log.projector()
    try:
        log.project(projector)
        before = log.snapshot()

        log.send(*sent)  # the same events again, at new offsets
        log.project(projector)
        after_resend = log.snapshot()
    finally:
        projector.close()
    log.client.delete(log.keys.offsets)  # and every message again, from offset 0
    again = log.projector(batch_size=7)
    try:
        log.project(again)
    finally:
        again.close()
    after_replay = log.snapshot()

    offsets = log.keys.offsets
    assert {k: v for k, v in after_resend.items() if k != offsets} == \
        {k: v for k, v in before.items() if k != offsets}
    assert after_replay == after_resend
    assert again.metrics.skipped.labels("duplicate")._value.get() == 5 * len(tasks) * 2


def test_a_batch_and_its_offsets_are_one_transaction(log: Log) -> None:
    """A reader taking MULTI snapshots all along never sees an event applied whose offset
    is not yet behind the stored offsets, nor the reverse."""
    tasks = [Task() for _ in range(6)]
    records = [r for t in tasks for r in a_life(t)]
    log.send(*records)
    where = {}  # event_id -> (partition key, offset)
    consumer = Consumer(consumer_config(log.settings, f"omc.test.{uuid.uuid4()}"))
    consumer.subscribe([log.events])
    while len(where) < len(records):
        for m in consumer.consume(100, timeout=1):
            if m.error() is None:
                where[log.codec.decode(m.value()).meta.event_id] = \
                    (f"{m.topic()}/{m.partition()}", m.offset())
    consumer.close()
    seen, problems, done = [], [], threading.Event()

    def watch() -> None:
        reader = redis.Redis.from_url(log.settings.redis_url)
        while not done.is_set():
            with reader.pipeline(transaction=True) as pipe:
                pipe.hgetall(log.keys.offsets)
                for task in tasks:
                    pipe.xrange(log.keys.events(task.id))
                offsets, *streams = pipe.execute()
            offsets = {k.decode(): int(v) for k, v in offsets.items()}
            applied = {json.loads(fields[b"event"])["event_id"]
                       for stream in streams for _, fields in stream}
            for event_id, (partition, offset) in where.items():
                if (event_id in applied) != (offset < offsets.get(partition, 0)):
                    problems.append((event_id, partition, offset, offsets))
            seen.append(len(applied))
        reader.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    projector = log.projector(batch_size=2)
    try:
        log.project(projector)
    finally:
        done.set()
        watcher.join()
        projector.close()

    assert problems == []
    assert len(set(seen)) > 3  # the reader did see the projection move, batch by batch


def test_a_conflicting_writer_makes_the_batch_start_over(log: Log) -> None:
    task = Task()
    log.send(*a_life(task))
    other = redis.Redis.from_url(log.settings.redis_url)

    class Interrupted(Projector):
        interrupted = False

        def _statuses(self, task_ids):
            if not self.interrupted:  # another instance commits between WATCH and EXEC
                self.interrupted = True
                other.hset(self.keys.offsets, "elsewhere/0", 1)
            return super()._statuses(task_ids)

    projector = log.projector()
    projector.__class__ = Interrupted
    try:
        log.project(projector)
    finally:
        projector.close()
        other.close()

    assert projector.metrics.conflicts._value.get() == 1
    assert log.status(task)["last_sequence"] == "5"
    assert len(log.entries(task)) == 5


def test_an_xadd_redis_refuses_is_a_duplicate_and_the_offsets_still_move(log: Log) -> None:
    task = Task()
    life = a_life(task)
    log.client.xadd(log.keys.events(task.id), {"type": "x", "event": "{}"}, id="9-0")
    log.send(*life)
    projector = log.projector()
    try:
        log.project(projector)
    finally:
        projector.close()

    assert projector.metrics.skipped.labels("duplicate")._value.get() == 5
    assert [i for i, _ in log.entries(task)] == ["9-0"]


def test_the_stream_keeps_the_latest_events_only(log: Log) -> None:
    task = Task()
    log.send(*a_life(task))
    projector = log.projector(maxlen=3)
    try:
        log.project(projector)
    finally:
        projector.close()

    assert [i for i, _ in log.entries(task)] == ["3-0", "4-0", "5-0"]
    assert log.status(task)["last_sequence"] == "5"


# -- rebuild --------------------------------------------------------------------------------


def test_a_rebuild_from_offset_zero_equals_the_live_projection(log: Log) -> None:
    early, late, refused, busy = Task(), Task(), Task(), Task(tenant="globex")
    projector = log.projector(batch_size=3)
    try:
        log.send(early.submit(), *a_life(early)[:2], *a_life(busy)[:3])
        log.project(projector)
        log.send(*a_life(late)[:3], refused.next("omc.command.CommandRejected",
                                                 rejected_command_type=view.SUBMIT_TASK))
        log.project(projector)
        log.send(late.submit(), refused.submit(), early.next("omc.task.TaskCancelled"),
                 *a_life(busy)[:2])
        log.project(projector)
    finally:
        projector.close()
    live = log.snapshot()
    unrelated = f"{log.keys.prefix}:task:{late.id}:cache"
    log.client.set(unrelated, "not ours")

    deleted = rebuild(log.client, log.keys)
    assert log.client.exists(unrelated) == 1
    log.client.delete(unrelated)
    assert log.snapshot() == {}
    rebuilt = log.projector(batch_size=500)
    try:
        log.project(rebuilt)
    finally:
        rebuilt.close()

    assert deleted == len(live) + 1  # and the offsets' updated_at
    assert log.snapshot() == live
    assert log.status(refused)["status"] == "failed"
    assert log.status(late)["status"] == "running"
    assert log.status(early)["status"] == "cancelled"


# -- poison ---------------------------------------------------------------------------------


def test_poison_goes_to_the_dead_letters_and_the_projection_moves_on(log: Log) -> None:
    task = Task()
    life = a_life(task)
    log.send(*life[:2])
    log.send_raw(log.events, b"not the wire format", key=task.id.encode())
    log.send_raw(log.events, b"\x00\x7f\xff\xff\xf0garbage", key=task.id.encode())
    log.send(*life[2:])
    log.send_raw(log.commands, b"\x00\x00", key=b"last")  # poison as the last message
    projector = log.projector()
    try:
        log.project(projector)
    finally:
        projector.close()

    letters = read_dead_letters(log, 3)
    assert sorted(letter.origin_topic for letter in letters) == \
        sorted([log.events, log.events, log.commands])
    assert {letter.error_type for letter in letters} >= {"Undecodable"}
    assert {letter.value for letter in letters} >= {b"not the wire format", b"\x00\x00"}
    assert log.status(task)["last_sequence"] == "5"
    assert len(log.entries(task)) == 5
    assert stored_offsets(log.client, log.keys) == \
        {w: high for w, high in log.watermarks().items() if high > 0}


# -- the gateway's queries ------------------------------------------------------------------


@pytest.fixture
def aclient(settings: Settings) -> Callable[[], redis.asyncio.Redis]:
    return lambda: redis.asyncio.Redis.from_url(settings.redis_url, socket_timeout=30)


def test_queries_answer_only_the_tasks_tenant(log: Log, aclient) -> None:
    task = Task()
    log.send(task.submit(), *a_life(task))
    projector = log.projector()
    try:
        log.project(projector)
    finally:
        projector.close()
    prefix = log.keys.prefix

    async def read(tenant: str, after: int = 0) -> tuple[list, int | None, float]:
        client = aclient()
        try:
            started = time.monotonic()
            events = await queries.read_events(client, tenant, task.id, after=after,
                                               block_ms=2000, prefix=prefix)
            took = time.monotonic() - started
            return events, await queries.last_sequence(client, tenant, task.id,
                                                       prefix=prefix), took
        finally:
            await client.aclose()

    mine, mine_last, _ = asyncio.run(read("acme", after=2))
    theirs, theirs_last, took = asyncio.run(read("globex"))

    status = queries.task_status(log.client, "acme", task.id, prefix=prefix)
    assert status["status"] == "awaiting_approval"
    assert status["last_sequence"] == 5
    assert status["task_id"] == task.id
    assert queries.task_status(log.client, "globex", task.id, prefix=prefix) is None
    assert queries.task_status(log.client, "acme", new_id(), prefix=prefix) is None
    assert [e["sequence"] for e in mine] == [3, 4, 5]
    assert mine_last == 5
    assert theirs == []
    assert theirs_last is None
    assert took < 1
    assert queries.as_of(log.client, prefix=prefix)["offsets"] == \
        stored_offsets(log.client, log.keys)


def test_read_events_waits_for_the_next_event(log: Log, aclient) -> None:
    task = Task()
    life = a_life(task)
    log.send(task.submit(), *life[:3])
    projector = log.projector()
    log.project(projector)
    prefix = log.keys.prefix

    def later() -> None:
        time.sleep(1)
        log.send(life[3])
        log.project(projector)

    async def follow() -> tuple[list, float, list, float]:
        client = aclient()
        try:
            started = time.monotonic()
            waited, _ = await asyncio.gather(
                queries.read_events(client, "acme", task.id, after=3, block_ms=20_000,
                                    prefix=prefix),
                asyncio.to_thread(later))
            took = time.monotonic() - started
            started = time.monotonic()
            nothing = await queries.read_events(client, "acme", task.id, after=4,
                                                block_ms=300, prefix=prefix)
            return waited, took, nothing, time.monotonic() - started
        finally:
            await client.aclose()

    try:
        waited, took, nothing, idle = asyncio.run(follow())
    finally:
        projector.close()

    assert [e["sequence"] for e in waited] == [4]
    assert waited[0]["event_type"] == "omc.task.ActionProposed"
    assert 1 <= took < 20
    assert nothing == []
    assert 0.25 <= idle < 5


def test_read_events_waits_for_a_task_that_has_no_events_yet(log: Log, aclient) -> None:
    task, intruder = Task(), Task(tenant="globex")
    intruder.id = task.id  # another tenant's events under the same id must not leak
    projector = log.projector()
    prefix = log.keys.prefix

    def later() -> None:
        time.sleep(1)
        log.send(intruder.next("omc.task.TaskSubmitted"))
        log.project(projector)

    async def follow() -> list:
        client = aclient()
        try:
            found, _ = await asyncio.gather(
                queries.read_events(client, "acme", task.id, after=0, block_ms=20_000,
                                    prefix=prefix),
                asyncio.to_thread(later))
            return found
        finally:
            await client.aclose()

    try:
        found = asyncio.run(follow())
    finally:
        projector.close()

    assert found == []
