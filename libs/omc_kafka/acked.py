"""Producing from asyncio: `await send(...)` returns once Kafka acknowledged every record.

`produce()` only queues a message in librdkafka (acks=all, idempotence on: its own threads
send, retry and keep a partition's order); a timer on the event loop serves delivery reports
with `poll(0)` while messages are in flight, and each report resolves its caller's future on
the loop. Many callers' messages share librdkafka's batches, so concurrent writers do not
wait for one another's round trips. The first record of each (topic, type) looks its schema
id up in the registry (blocking HTTP, then cached), in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial

from confluent_kafka import KafkaError, Message, Producer

from omc_events.codec import Codec
from omc_events.envelope import headers
from omc_events.record import Record
from omc_kafka.producer import DeliveryFailed

POLL_INTERVAL = 0.001


class AsyncProducer:
    def __init__(self, producer: Producer, codec: Codec, source: str,
                 *, poll_interval: float = POLL_INTERVAL) -> None:
        self.producer = producer
        self.codec = codec
        self.source = source
        self.poll_interval = poll_interval
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._warm: set[tuple[str, str]] = set()

    async def send(self, topic: str, records: Sequence[Record], key: str) -> None:
        """Queue `records` for `topic` under `key`, in order; return when all are acknowledged.
        Raises `DeliveryFailed` if any is not, and codec errors before anything is queued."""
        loop = asyncio.get_running_loop()
        values = []
        for record in records:
            if (topic, record.SCHEMA) in self._warm:
                values.append(self.codec.encode(topic, record))
            else:
                values.append(await asyncio.to_thread(self.codec.encode, topic, record))
                self._warm.add((topic, record.SCHEMA))
        futures = []
        for record, value in zip(records, values, strict=True):
            future = loop.create_future()
            self.producer.produce(topic, value=value, key=key,
                                  headers=headers(record.meta, self.source),  # type: ignore[attr-defined]
                                  on_delivery=partial(self._delivered, future))
            self._in_flight += 1
            futures.append(future)
        if self._timer is None:
            self._timer = loop.call_later(self.poll_interval, self._poll, loop)
        await asyncio.gather(*futures)

    def _delivered(self, future: asyncio.Future, error: KafkaError | None,
                   message: Message) -> None:
        self._in_flight -= 1
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(DeliveryFailed(f"{message.topic()}: {error.str()}"))

    def _poll(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self.producer.poll(0)
        if self._in_flight > 0:
            self._timer = loop.call_later(self.poll_interval, self._poll, loop)

    async def close(self, timeout: float = 30) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.to_thread(self.producer.flush, timeout)
