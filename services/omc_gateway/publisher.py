"""The command bus: commands to `omc.commands.v1`, answered once Kafka acknowledged them.

Producing is blocking, so one thread owns the `EventProducer` and commits in groups: it takes
every command waiting, sends them, flushes once (acks=all, idempotence on), and answers each
request's future on its event loop. Under load a flush covers many requests, so throughput
does not stop at one round trip per command. A flush that fails fails its whole group with
`Unavailable` (a command of the group may still have been written: a client retrying with
its Idempotency-Key gets the same command id, which consumers drop as a duplicate).

`message.timeout.ms` is the gateway's Kafka timeout, so librdkafka gives up on a command at
the moment the request is answered 503, rather than delivering it minutes later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import anyio
from confluent_kafka import KafkaException

from omc_events.avro import RecordInvalid
from omc_events.codec import CodecError
from omc_events.record import Record
from omc_gateway.errors import FieldError, InvalidBody, Unavailable
from omc_kafka.producer import DeliveryFailed, EventProducer

log = logging.getLogger("omc.gateway.publisher")

COMMANDS_TOPIC = "omc.commands.v1"
MAX_GROUP = 2000

_Item = tuple[Record, asyncio.Future, asyncio.AbstractEventLoop]


def kafka_down() -> Unavailable:
    return Unavailable("kafka", "The event log (Kafka) did not acknowledge the command, so it "
                                "was not accepted; retry later.")


class KafkaCommandBus:
    def __init__(self, make_producer: Callable[[], EventProducer], *, timeout: float,
                 topic: str = COMMANDS_TOPIC) -> None:
        self.make_producer = make_producer
        self.timeout = timeout
        self.topic = topic
        self.producer: EventProducer | None = None
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def open(self) -> None:
        self.producer = self.make_producer()
        self._thread = threading.Thread(target=self._run, name="omc-gateway-producer",
                                        daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            await anyio.to_thread.run_sync(self._thread.join)
            self._thread = None

    async def publish(self, record: Record) -> None:
        if self._thread is None:
            raise Unavailable("kafka", "The gateway is not connected to the event log yet.")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((record, future, loop))
        await future

    async def ping(self) -> None:
        producer = self.producer
        if producer is None:
            raise Unavailable("kafka", "The gateway is not connected to the event log yet.")
        try:
            metadata = await anyio.to_thread.run_sync(
                lambda: producer.producer.list_topics(self.topic, timeout=self.timeout))
        except KafkaException as error:
            raise kafka_down() from error
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not metadata.brokers:
            raise Unavailable("kafka", f"The topic {self.topic} is not available.")

    # -- the producer thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            try:
                self._commit(group)
            except Exception:  # never let the thread die: every later command would hang
                log.exception("committing %d command(s) failed", len(group))
                self._answer([(item, kafka_down()) for item in group])
            if stop:
                break
        if self.producer is not None:
            self.producer.producer.flush(self.timeout)

    def _commit(self, group: list[_Item]) -> None:
        assert self.producer is not None
        answers: list[tuple[_Item, BaseException | None]] = []
        sent: list[_Item] = []
        for item in group:
            try:
                self.producer.send(self.topic, item[0])
                sent.append(item)
            except RecordInvalid as error:
                answers.append((item, InvalidBody([FieldError(error.field, error.problem)])))
            except (CodecError, BufferError, KafkaException) as error:
                log.warning("a command could not be sent: %s: %s", type(error).__name__, error)
                answers.append((item, kafka_down()))
        if sent:
            try:
                self.producer.flush(self.timeout + 1)
                failed = False
            except DeliveryFailed as error:
                log.warning("%d command(s) not acknowledged: %s", len(sent), error)
                failed = True
            answers += [(item, kafka_down() if failed else None) for item in sent]
        self._answer(answers)

    def _answer(self, answers: list[tuple[_Item, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any]]] = {}
        for (_, future, loop), outcome in answers:
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(_settle, outcomes)


def _settle(outcomes: list[tuple[asyncio.Future, BaseException | None]]) -> None:
    for future, outcome in outcomes:
        if future.done():  # the request was cancelled (client gone)
            continue
        if outcome is None:
            future.set_result(None)
        else:
            future.set_exception(outcome)
