"""The notary's shell: read its history, follow the event topics, produce what the core says.

    build(settings, ...) -> NotaryProcess       the composition root
    NotaryProcess.start()                       read the proof topic to its end (restore),
                                                assign every event partition from offset 0,
                                                re-send the requests of open anchors
    NotaryProcess.step(timeout) -> int          one batch: observe, checkpoint what is due,
                                                produce and wait for Kafka's acks
    NotaryProcess.run(stop)                     steps until `stop()` is true

Nothing is committed to a consumer group: the state is the log. Outputs are acknowledged
before the next batch is read; a crash before the ack is answered by the restart reading
the proof topic (with what was written) before writing anything.

Tracing (omc_obs.tracing, on when configured): the core's records get their trace context
from `ProducerSpans`, a PRODUCER span per record (checkpoint, anchor attempt, confirmation),
ended once the record is acknowledged; see omc_notary.notary for how they form one trace.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.schema_registry import SchemaRegistryClient
from opentelemetry.trace import SpanKind

from omc_events.catalogue import Catalogue
from omc_events.codec import Codec, CodecError
from omc_events.record import Record
from omc_kafka.producer import EventProducer, producer_config
from omc_notary.metrics import NotaryMetrics
from omc_notary.notary import NO_TRACE, Anchoring, Notary, Output, TraceContext
from omc_notary.settings import NotarySettings
from omc_obs import tracing
from omc_proofs.checkpoint import NotaryKey
from omc_proofs.fastmeta import scan

log = logging.getLogger(__name__)

SOURCE = "omc/notary"
CHAIN_AGGREGATE = "chain"  # the watcher's BlockObserved (and other chain events)
LAG_EVERY = 15.0  # seconds between samples of the notary's lag (a watermark query each)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def notary_key_from(path: Path) -> NotaryKey:
    """The checkpoint-signing key from its secret file, made (mode 0600) if it is missing;
    its address is written beside it (<name>.address) for verifiers to pin."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    key = NotaryKey.from_file(path)
    public = path.with_name(path.stem + ".address")  # for verifiers: the address to trust
    if not public.exists() or public.read_text().strip() != key.address:
        public.write_text(key.address + "\n", encoding="utf-8")
    return key


class ProducerSpans:
    """The core's `Spans`: an OpenTelemetry PRODUCER span per record it writes, open until
    `end()` (after the record's ack); while tracing is off, the parent's context as is."""

    def __init__(self) -> None:
        self.open: list = []

    def begin(self, name: str, parent: TraceContext, **attributes: object) -> TraceContext:
        span = tracing.start(name, traceparent=parent[0], tracestate=parent[1],
                             kind=SpanKind.PRODUCER, **attributes)
        if span is None:
            return parent
        self.open.append(span)
        context = tracing.traceparent_of(span)
        return context if context[0] else NO_TRACE

    def end(self) -> None:
        spans, self.open = self.open, []
        for span in spans:
            span.end()


class NotaryProcess:
    def __init__(self, settings: NotarySettings, notary: Notary, codec: Codec,
                 producer: EventProducer, clock: Callable[[], datetime] = _now,
                 spans: ProducerSpans | None = None) -> None:
        self.settings = settings
        self.notary = notary
        self.codec = codec
        self.producer = producer
        self.clock = clock
        self.spans = spans or ProducerSpans()
        self.consumer: Consumer | None = None
        self.start_ends: dict[tuple[str, int], int] = {}
        self.positions: dict[tuple[str, int], int] = {}
        self.written = 0
        self.metrics = NotaryMetrics()
        self._lag_sampled = 0.0

    def _consumer(self) -> Consumer:
        return Consumer({"bootstrap.servers": self.settings.base.kafka_bootstrap,
                         "group.id": f"omc.notary.follow.{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": False,
                         "isolation.level": "read_committed"})

    def _partitions(self, consumer: Consumer, topic: str) -> list[int]:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        return sorted(metadata.partitions)

    def restore(self) -> int:
        """Fold the proof topic, start to end. Returns the records read."""
        consumer = self._consumer()
        topic = self.settings.proof_topic
        count = 0
        try:
            partitions = self._partitions(consumer, topic)
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in partitions}
            todo = {p for p, end in ends.items() if end > 0}
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
            while todo:
                for message in consumer.consume(self.settings.batch, 1.0):
                    if self._error(message):
                        continue
                    if message.offset() >= ends[message.partition()]:
                        todo.discard(message.partition())
                        continue
                    try:
                        self.notary.restore(self.codec.decode(message.value()))
                        count += 1
                    except CodecError as error:
                        log.warning("proof topic %s@%s: %s", message.partition(),
                                    message.offset(), error)
                    if message.offset() + 1 >= ends[message.partition()]:
                        todo.discard(message.partition())
        finally:
            consumer.close()
        return count

    def start(self) -> None:
        restored = self.restore()
        consumer = self.consumer = self._consumer()
        assignment = []
        for topic in self.settings.topics:
            for p in self._partitions(consumer, topic):
                self.start_ends[(topic, p)] = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=10)[1]
                self.positions[(topic, p)] = 0
                assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
        consumer.assign(assignment)
        self._send(self.notary.resubmissions())
        log.info("notary %s: %d proof records restored; following %d partitions",
                 self.notary.key.address, restored, len(assignment))

    @property
    def ready(self) -> bool:
        """Everything the event topics held at start has been read."""
        return all(self.positions[tp] >= end for tp, end in self.start_ends.items())

    def step(self, timeout: float = 0.5) -> int:
        assert self.consumer is not None, "start() first"
        messages = self.consumer.consume(self.settings.batch, timeout)
        outputs: list[Output] = []
        for message in messages:
            if self._error(message):
                continue
            topic, partition = message.topic(), message.partition()
            self.positions[(topic, partition)] = message.offset() + 1
            record, event_id, occurred_at = self._read(topic, message.value())
            outputs += self.notary.observe(topic, partition, message.offset(),
                                           message.value(), record, self.clock(),
                                           event_id=event_id, occurred_at=occurred_at)
        outputs += self.notary.due(self.clock(), self.ready)
        self.metrics.observe(self.notary, outputs)
        self._send(outputs)
        self._sample_lag()
        return len(messages)

    def _sample_lag(self) -> None:
        """omc_notary_lag_events: what the event topics hold beyond what was read."""
        if self.consumer is None or time.monotonic() - self._lag_sampled < LAG_EVERY:
            return
        self._lag_sampled = time.monotonic()
        behind = 0
        for (topic, partition), position in self.positions.items():
            high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                       timeout=5, cached=False)[1]
            behind += max(0, high - position)
        self.metrics.lag.set(behind)

    def _read(self, topic: str, value: bytes | None,
              ) -> tuple[Record | None, str | None, datetime | None]:
        """The record on the tx topic (anchors' outcomes are there) and of the chain
        aggregate (blocks, which may hold anchors); elsewhere only the event id and time,
        read from the envelope without decoding the record (a restart replays the whole
        log: this is most of its cost)."""
        if topic != self.settings.tx_topic:
            try:
                meta = scan((value or b"")[5:])
                if meta.aggregate_type != CHAIN_AGGREGATE:
                    return None, meta.event_id, _EPOCH + timedelta(
                        microseconds=meta.occurred_at_us)
            except (ValueError, OverflowError):
                pass
        try:
            return self.codec.decode(value), None, None
        except CodecError:
            return None, None, None

    def checkpoint_now(self) -> int:
        """Read every event topic to where it ends now, then checkpoint every stream with
        new events whatever the thresholds (and anchor them, when on). For demos and
        audits that want the newest events covered at once. Returns the records written."""
        before = self.written
        while not self.ready:
            self.step(0.5)
        outputs = []
        for stream in self.notary.streams.values():
            if stream.tree.size > stream.checkpoint_size:  # anchoring traffic alone: signed,
                outputs += self.notary.checkpoint(stream, self.clock())  # not anchored
        self.metrics.observe(self.notary, outputs)
        self._send(outputs)
        return self.written - before

    def run(self, stop: Callable[[], bool], started: Callable[[], None] = lambda: None) -> None:
        """Start (rebuild from the log, then call `started`), then step until `stop()`."""
        self.start()
        started()
        try:
            while not stop():
                self.step()
        finally:
            self.close()

    def _send(self, outputs: list[Output]) -> None:
        """Produce and wait for the acks; then end the records' spans (ProducerSpans)."""
        try:
            for output in outputs:
                self.producer.send(output.topic, output.record, key=output.key)
            if outputs:
                self.producer.flush()
                self.written += len(outputs)
        finally:
            self.spans.end()

    @staticmethod
    def _error(message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.code() == KafkaError._PARTITION_EOF:
            return True
        raise KafkaException(error)

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
        self.producer.flush()


def catalogue_for(settings: NotarySettings) -> Catalogue:
    """The catalogue, with the configured proof and tx topics declared like the real ones
    when they are topics of their own (a test's, a staging copy)."""
    catalogue = Catalogue.load()
    topics = dict(catalogue.topics)
    for name, like in ((settings.proof_topic, "omc.proof.events.v1"),
                       (settings.tx_topic, "omc.tx.events.v1")):
        if name not in topics:
            topics[name] = dataclasses.replace(catalogue[like], name=name)
    return Catalogue(topics)


def build(settings: NotarySettings, *, key: NotaryKey | None = None,
          catalogue: Catalogue | None = None,
          clock: Callable[[], datetime] = _now) -> NotaryProcess:
    codec = Codec(SchemaRegistryClient({"url": settings.base.schema_registry_url}),
                  catalogue=catalogue or catalogue_for(settings))
    anchoring = None
    if settings.anchor_sender is not None:
        assert settings.anchor_registry is not None
        from eth_utils import to_checksum_address

        anchoring = Anchoring(settings.base.chain_id,
                              to_checksum_address(settings.anchor_registry),
                              to_checksum_address(settings.anchor_sender),
                              settings.anchor_max_fee_wei, settings.anchor_attempts,
                              settings.anchor_retry_seconds, settings.anchor_timeout_seconds)
    spans = ProducerSpans()
    notary = Notary(key or notary_key_from(settings.key_file), codec.schemas,
                    proof_topic=settings.proof_topic, tx_topic=settings.tx_topic,
                    every_events=settings.every_events, every_seconds=settings.every_seconds,
                    anchoring=anchoring, spans=spans)
    producer = EventProducer(Producer(producer_config(settings.base)), codec, SOURCE)
    return NotaryProcess(settings, notary, codec, producer, clock, spans)


__all__ = ["NotaryProcess", "ProducerSpans", "build", "notary_key_from"]
