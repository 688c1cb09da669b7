"""Reading a whole topic into this process: every partition, from offset 0, no consumer group.

Each runtime instance folds the agent, task and transaction topics into its own views this
way, so its state is rebuilt from the log on start and kept current while it runs. A record
that does not decode is logged and skipped: dead-lettering belongs to the topic's group
consumers, and one bad message must not stop a view.

`wait_current()` is the read-your-writes barrier: it returns once this follower has read
everything the topic held when it was called.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from omc_config import Settings
from omc_events.codec import Codec, CodecError
from omc_events.record import Record

log = logging.getLogger(__name__)

OnRecord = Callable[[Record, int], None]


class Follower:
    """Folds one topic into a view through `on_record(record, partition)` on the event loop."""

    def __init__(self, settings: Settings, codec: Codec, topic: str, on_record: OnRecord,
                 *, batch: int = 500, known: Callable[[str], bool] = lambda event_id: False
                 ) -> None:
        """`known(event_id)` names events this process wrote and folded already: they are
        not decoded again (their `ce_id` header says who they are)."""
        self.settings = settings
        self.known = known
        self.codec = codec
        self.topic = topic
        self.on_record = on_record
        self.batch = batch
        self.positions: dict[int, int] = {}
        self.skipped = 0
        self._consumer: Consumer | None = None
        self._progress = asyncio.Event()
        self._stopping = False

    def _open(self) -> Consumer:
        consumer = Consumer({
            "bootstrap.servers": self.settings.kafka_bootstrap,
            "group.id": f"omc.runtime.follow.{uuid.uuid4().hex}",  # never joined or committed
            "enable.auto.commit": False, "enable.partition.eof": False,
            "isolation.level": "read_committed",
        })
        metadata = consumer.list_topics(self.topic, timeout=10)
        partitions = sorted(metadata.topics[self.topic].partitions)
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        self.positions = {p: 0 for p in partitions}
        return consumer

    def _ends(self) -> dict[int, int]:
        consumer = self._consumer
        assert consumer is not None
        return {p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10,
                                                  cached=False)[1]
                for p in self.positions}

    async def run(self) -> None:
        """Follow until `stop()`; Kafka errors other than end-of-partition are raised."""
        self._consumer = await asyncio.to_thread(self._open)
        try:
            while not self._stopping:
                messages = await asyncio.to_thread(self._consumer.consume, self.batch, 0.2)
                for message in messages:
                    self._take(message)
                self._progress.set()
                self._progress = asyncio.Event()
        finally:
            await asyncio.to_thread(self._consumer.close)

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

    async def wait_current(self, timeout: float = 30.0) -> None:
        """Return once everything the topic holds now has been read (TimeoutError if not)."""
        while self._consumer is None:
            await asyncio.sleep(0.05)
        ends = await asyncio.to_thread(self._ends)

        async def reached() -> None:
            while any(self.positions.get(p, 0) < end for p, end in ends.items()):
                await self._progress.wait()

        await asyncio.wait_for(reached(), timeout)

    def stop(self) -> None:
        self._stopping = True
