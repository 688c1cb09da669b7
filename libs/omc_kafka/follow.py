"""Reading a whole topic into a process: every partition from offset 0, no consumer group.

Services rebuild their state this way on start (the agent runtime its task, agent and
transaction views; the chain watcher its chain and receipts aggregates) and keep following
while they run. A record that does not decode is logged and skipped: dead-lettering belongs
to the topic's group consumers, and one bad message must not stop a view.

`wait_current()` is the read-your-writes barrier: it returns once everything the topic held
when it was called has been read. Offsets are asked of a second, unassigned consumer, which
answers at once (an assigned one answers offset queries slowly).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from omc_events.codec import Codec, CodecError
from omc_events.record import Record

log = logging.getLogger(__name__)

OnRecord = Callable[[Record, int], None]


class TopicReader:
    """Folds one topic through `on_record(record, partition)`, on the event loop, in offset
    order per partition. `known(event_id)` names events the caller wrote and folded already:
    they are not decoded again (their `ce_id` header says who they are)."""

    def __init__(self, bootstrap: str, codec: Codec, topic: str, on_record: OnRecord, *,
                 batch: int = 1000, name: str = "omc.read",
                 known: Callable[[str], bool] = lambda event_id: False) -> None:
        self.bootstrap = bootstrap
        self.codec = codec
        self.topic = topic
        self.on_record = on_record
        self.batch = batch
        self.name = name
        self.known = known
        self.positions: dict[int, int] = {}
        self.skipped = 0
        self._consumer: Consumer | None = None
        self._probe: Consumer | None = None  # unassigned: its offset queries answer at once
        self._opened = asyncio.Event()
        self._progress = asyncio.Event()
        self._stopping = False
        self._error: BaseException | None = None

    def _config(self) -> dict:
        return {"bootstrap.servers": self.bootstrap,
                "group.id": f"{self.name}.{uuid.uuid4().hex}",  # never joined or committed
                "enable.auto.commit": False, "enable.partition.eof": False,
                "isolation.level": "read_committed"}

    def _open(self) -> Consumer:
        self._probe = Consumer(self._config())
        consumer = Consumer(self._config())
        metadata = consumer.list_topics(self.topic, timeout=10)
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None:
            consumer.close()
            self._probe.close()
            raise RuntimeError(f"topic {self.topic} is not available: "
                               f"{found.error if found else 'missing'}")
        partitions = sorted(found.partitions)
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        self.positions = {p: 0 for p in partitions}
        return consumer

    def _ends(self) -> dict[int, int]:
        assert self._probe is not None
        return {p: self._probe.get_watermark_offsets(TopicPartition(self.topic, p),
                                                     timeout=10, cached=False)[1]
                for p in self.positions}

    def _close(self) -> None:
        for consumer in (self._consumer, self._probe):
            if consumer is not None:
                consumer.close()

    async def run(self) -> None:
        """Follow until `stop()`; Kafka errors are raised (and by `wait_current`)."""
        try:
            self._consumer = await asyncio.to_thread(self._open)
            self._opened.set()
            try:
                while not self._stopping:
                    messages = await asyncio.to_thread(self._consumer.consume, self.batch, 0.2)
                    for message in messages:
                        self._take(message)
                    self._wake()
            finally:
                await asyncio.to_thread(self._close)
        except BaseException as error:
            self._error = error
            self._opened.set()
            self._wake()
            raise

    def _wake(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    def _check(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"reading {self.topic} failed: {self._error}") from self._error

    def _take(self, message) -> None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            raise RuntimeError(f"{self.topic}: {error}")
        self.positions[message.partition()] = message.offset() + 1
        for name, value in message.headers() or ():
            if name == "ce_id":
                if value is not None and self.known(value.decode()):
                    return
                break
        try:
            record = self.codec.decode(message.value())
        except CodecError as poison:
            self.skipped += 1
            log.warning("skipping undecodable message %s/%s@%s: %s", self.topic,
                        message.partition(), message.offset(), poison)
            return
        self.on_record(record, message.partition())

    async def wait_current(self, timeout: float = 60.0) -> None:
        """Return once everything the topic holds now has been read (TimeoutError if not)."""
        await asyncio.wait_for(self._opened.wait(), timeout)
        self._check()
        ends = await asyncio.to_thread(self._ends)

        async def reached() -> None:
            while any(self.positions.get(p, 0) < end for p, end in ends.items()):
                await self._progress.wait()
                self._check()

        await asyncio.wait_for(reached(), timeout)

    async def read_to_end(self, timeout: float = 120.0) -> None:
        """Read everything the topic holds now, then stop."""
        task = asyncio.get_running_loop().create_task(self.run())
        try:
            await self.wait_current(timeout)
        finally:
            self.stop()
            await task

    def stop(self) -> None:
        self._stopping = True
