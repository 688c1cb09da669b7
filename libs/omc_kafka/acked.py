"""Producing from asyncio: `await send(...)` returns once Kafka acknowledged every record.

`produce()` only queues a message in librdkafka (acks=all, idempotence on: its own threads
send, retry and keep a partition's order); a timer on the event loop serves delivery reports
with `poll(0)` while messages are in flight, and each report resolves its caller's future on
the loop. Many callers' messages share librdkafka's batches, so concurrent writers do not
wait for one another's round trips. The first record of each (topic, type) looks its schema
id up in the registry (blocking HTTP, then cached), in a worker thread.

    await producer.send(topic, records, key)           encode, produce, await every ack
    await producer.prefix(topic, schema) -> bytes      the wire-format prefix of a type
    await producer.send_encoded(topic, [(value, key, headers), ...])   values encoded already

A message not acknowledged raises `DeliveryFailed`; librdkafka's queue being full raises
`BufferError` before anything of that call is queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial

from confluent_kafka import KafkaError, Message, Producer

from omc_events.codec import Codec
from omc_events.envelope import headers
from omc_events.record import Record
from omc_kafka.producer import DeliveryFailed

log = logging.getLogger("omc.kafka.acked")

POLL_INTERVAL = 0.001
Headers = list[tuple[str, bytes]]


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
        messages = []
        for record in records:
            value = self.codec.schemas.encode(record, await self.prefix(topic, record.SCHEMA))
            messages.append((value, key, headers(record.meta, self.source)))  # type: ignore[attr-defined]
        await self.send_encoded(topic, messages)

    async def prefix(self, topic: str, schema: str) -> bytes:
        """The wire-format prefix of record type `schema` on `topic` (codec errors raised)."""
        if (topic, schema) in self._warm:
            return self.codec.prefix(topic, schema)
        found = await asyncio.to_thread(self.codec.prefix, topic, schema)
        self._warm.add((topic, schema))
        return found

    async def send_encoded(self, topic: str,
                           messages: Sequence[tuple[bytes, str, Headers]]) -> None:
        """Queue (value, key, headers) messages for `topic` in order; return when all are
        acknowledged. Raises `DeliveryFailed`, or `BufferError` when librdkafka's queue is
        full (then the messages before the refused one are queued and awaited first)."""
        loop = asyncio.get_running_loop()
        futures = []
        try:
            for value, key, pairs in messages:
                future = loop.create_future()
                self.producer.produce(topic, value=value, key=key, headers=pairs,
                                      on_delivery=partial(self._delivered, future))
                self._in_flight += 1
                futures.append(future)
        finally:
            if futures and self._timer is None:
                self._timer = loop.call_later(self.poll_interval, self._poll, loop)
            if len(futures) < len(messages):
                await asyncio.gather(*futures, return_exceptions=True)
        await asyncio.gather(*futures)

    def _delivered(self, future: asyncio.Future, error: KafkaError | None,
                   message: Message) -> None:
        self._in_flight -= 1
        if future.done():  # the caller is gone (cancelled)
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(DeliveryFailed(f"{message.topic()}: {error.str()}"))

    def _poll(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve delivery reports; again in `poll_interval` while messages are in flight (a
        timer callback, cheaper than a task that sleeps)."""
        self._timer = None
        try:
            self.producer.poll(0)
        except Exception:  # a callback failed: keep serving the others
            log.exception("serving Kafka delivery reports failed")
        if self._in_flight > 0:
            self._timer = loop.call_later(self.poll_interval, self._poll, loop)

    async def close(self, timeout: float = 30) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.to_thread(self.producer.flush, timeout)
