"""The Redis projector: live status and latest events per task.

    consumes   omc.commands.v1 (SubmitTask only), omc.task.events.v1 (every task event)
    group      omc.proj.redis; partitions resume from the offsets kept in Redis, never from
               the group's committed offsets (those are committed too, for lag tools only)
    writes     keys.py: per task a status hash and a stream of its latest events
    guarantee  one MULTI/EXEC per batch holds the batch's writes and its next offsets, under
               WATCH of the offsets hash, so a crash never loses or doubles a write. Messages
               below the stored offsets are skipped; an event whose sequence the task has
               already applied changes nothing (stream ids are `<sequence>-0`, and an XADD at
               or below the stream's top is refused by Redis and counted as a duplicate).
    state      none in the process: the status hashes are read in each batch
    errors     poison messages go to omc.deadletter.v1 (EventConsumer/DeadLetters) and the
               offsets move past them; infrastructure errors (Kafka, Redis, the registry) are
               retried with backoff on a new consumer, then `run` raises `InfrastructureDown`.

Every instance writes the offsets hash in every batch, so the WATCH serialises batches of all
instances: a SubmitTask read on one instance and a TaskSubmitted on another never overwrite
each other. A rebuild (`rebuild`, then a replay from offset 0) must run with the live
projector stopped.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from omc_errors import OmcError
from omc_events.codec import Codec
from omc_kafka.consumer import Delivery, EventConsumer
from omc_kafka.deadletter import DeadLetters
from omc_kafka.producer import DeliveryFailed
from omc_obs import tracing
from omc_proj_redis.keys import Keys
from omc_proj_redis.view import SUBMIT_TASK, Outcome, on_command, on_event, rfc3339

log = logging.getLogger("omc.proj.redis")

GROUP = "omc.proj.redis"
COMMANDS_TOPIC = "omc.commands.v1"
EVENTS_TOPIC = "omc.task.events.v1"
DEFAULT_MAXLEN = 1000
WATCH_ATTEMPTS = 20
_DUPLICATE_ID = "equal or smaller than the target stream top item"

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, KafkaException,
    DeliveryFailed, httpx.TransportError,
)
"""Errors that mean a dependency is down: retried, never dead-lettered."""


class ProjectionError(OmcError):
    """The projection could not apply a batch."""


class InfrastructureDown(ProjectionError):
    """Kafka, Redis or the schema registry stayed unreachable through every retry."""


class Metrics:
    """The projector's Prometheus metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.applied = Counter("omc_proj_redis_events_applied", "Messages applied to Redis.",
                               ["event_type"], registry=r)
        self.skipped = Counter("omc_proj_redis_events_skipped",
                               "Messages that changed nothing, by reason.", ["reason"],
                               registry=r)
        self.batches = Counter("omc_proj_redis_batches", "Batches committed.", registry=r)
        self.conflicts = Counter("omc_proj_redis_watch_conflicts",
                                 "Batches retried because the offsets moved under WATCH.",
                                 registry=r)
        self.retries = Counter("omc_proj_redis_infrastructure_retries",
                               "Infrastructure errors retried.", registry=r)
        self.lag = Gauge("omc_proj_redis_lag_messages",
                         "Messages in the partition not applied yet (high watermark - next "
                         "offset).", ["topic", "partition"], registry=r)
        self.lag_seconds = Gauge("omc_proj_redis_lag_seconds",
                                 "Age of the newest message of the last batch; 0 when idle.",
                                 registry=r)


@dataclass
class BatchResult:
    """What one batch did."""

    applied: int = 0
    skipped: Tally = field(default_factory=Tally)
    offsets: dict[str, int] = field(default_factory=dict)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _where(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


def stored_offsets(client: redis.Redis, keys: Keys) -> dict[str, int]:
    """The offsets hash: `<topic>/<partition>` -> next offset to apply."""
    return {_text(k): int(v) for k, v in client.hgetall(keys.offsets).items()}


def rebuild(client: redis.Redis, keys: Keys) -> int:
    """Delete every key of this projection under `keys.prefix` and its offsets, so the next
    run replays the log from offset 0. Returns how many keys were deleted."""
    doomed = [keys.offsets, keys.updated_at]
    doomed += [k for k in client.scan_iter(match=keys.task_pattern, count=1000)
               if keys.is_task_key(_text(k))]
    deleted = 0
    for start in range(0, len(doomed), 500):
        deleted += client.delete(*doomed[start:start + 500])
    return deleted


class Projector:
    """Applies batches of the two topics to Redis; `run` loops until told to stop."""

    def __init__(self, client: redis.Redis, new_consumer: Callable[[], Consumer], codec: Codec,
                 dead_letters: DeadLetters, *, keys: Keys | None = None,
                 commands_topic: str = COMMANDS_TOPIC, events_topic: str = EVENTS_TOPIC,
                 maxlen: int = DEFAULT_MAXLEN, batch_size: int = 500,
                 poll_timeout: float = 1.0, metrics: Metrics | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be >= 1")
        self.client = client
        self.new_consumer = new_consumer
        self.codec = codec
        self.dead_letters = dead_letters
        self.keys = keys or Keys()
        self.commands_topic = commands_topic
        self.events_topic = events_topic
        self.maxlen = maxlen
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.consumer: Consumer | None = None
        self._events: EventConsumer | None = None
        self._saved: dict[str, int] = {}

    # -- the consumer ----------------------------------------------------------------------

    def start(self) -> None:
        """A new consumer, subscribed; partitions resume from the offsets in Redis."""
        self.close()
        self.consumer = self.new_consumer()
        self._events = EventConsumer(self.consumer, self.codec, self.dead_letters)
        self.consumer.subscribe([self.commands_topic, self.events_topic],
                                on_assign=self._on_assign)

    def close(self) -> None:
        consumer, self.consumer, self._events = self.consumer, None, None
        if consumer is not None:
            try:
                consumer.close()
            except (KafkaException, RuntimeError) as error:
                log.warning("closing the consumer failed: %s", error)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = stored_offsets(self.client, self.keys)
        for tp in partitions:
            where = _where(tp.topic, tp.partition)
            tp.offset = stored.get(where, OFFSET_BEGINNING)
            self._saved[where] = stored.get(where, 0)
        consumer.assign(partitions)
        log.info("assigned %s", ", ".join(f"{_where(p.topic, p.partition)}@{p.offset}"
                                          for p in partitions) or "nothing")

    def _positions(self) -> dict[str, int]:
        assert self.consumer is not None
        assignment = self.consumer.assignment()
        if not assignment:
            return {}
        return {_where(tp.topic, tp.partition): tp.offset
                for tp in self.consumer.position(assignment) if tp.offset >= 0}

    # -- one batch -------------------------------------------------------------------------

    def step(self) -> int:
        """Poll one batch and apply it; the number of messages it applied or skipped."""
        if self._events is None:
            self.start()
        assert self._events is not None
        deliveries = self._events.poll(self.batch_size, self.poll_timeout)
        positions = self._positions()
        moved = any(offset > self._saved.get(where, 0) for where, offset in positions.items())
        if deliveries or moved:
            result = self.apply(deliveries, positions)
            self._saved.update(result.offsets)
            self._commit_to_group(result.offsets)
        newest = max((d.message.timestamp()[1] for d in deliveries), default=0)
        self.metrics.lag_seconds.set(max(0.0, time.time() - newest / 1000) if newest else 0.0)
        self._update_lag(positions)
        return len(deliveries)

    def apply(self, deliveries: list[Delivery], positions: Mapping[str, int]) -> BatchResult:
        """Write `deliveries` and the offsets (`positions`, and past every delivery) in one
        transaction; retried while another instance moves the offsets under it."""
        for _ in range(WATCH_ATTEMPTS):
            try:
                result = self._apply_once(deliveries, positions)
            except redis.WatchError:
                self.metrics.conflicts.inc()
                continue
            for kind, count in result.skipped.items():
                self.metrics.skipped.labels(kind).inc(count)
            return result
        raise ProjectionError(f"the offsets hash {self.keys.offsets} kept moving during "
                              f"{WATCH_ATTEMPTS} attempts; is a rebuild running meanwhile?")

    def _apply_once(self, deliveries: list[Delivery],
                    positions: Mapping[str, int]) -> BatchResult:
        result = BatchResult()
        with self.client.pipeline(transaction=True) as pipe:
            pipe.watch(self.keys.offsets)
            stored = {_text(k): int(v) for k, v in pipe.hgetall(self.keys.offsets).items()}
            fresh = [d for d in deliveries
                     if d.message.offset() >= stored.get(_where(d.message.topic(),
                                                                d.message.partition()), 0)]
            result.skipped["already_applied"] = len(deliveries) - len(fresh)
            before = self._statuses(self._task_ids(fresh))
            outcomes, after = self._decide(fresh, before)

            offsets = dict(positions)
            for d in deliveries:
                where = _where(d.message.topic(), d.message.partition())
                offsets[where] = max(offsets.get(where, 0), d.message.offset() + 1)
            offsets = {w: o for w, o in offsets.items() if o > stored.get(w, -1)}
            result.offsets = {**stored, **offsets}

            pipe.multi()
            queued: list[Outcome | None] = []  # one per command: the XADD's outcome, or None
            for task_id, status in after.items():
                key = self.keys.status(task_id)
                gone = sorted(set(before.get(task_id) or {}) - set(status))
                if gone:
                    pipe.hdel(key, *gone)
                    queued.append(None)
                pipe.hset(key, mapping=status)
                queued.append(None)
            for outcome in outcomes:
                if outcome.entry is not None:
                    pipe.xadd(self.keys.events(outcome.task_id), outcome.entry,
                              id=f"{outcome.sequence}-0", maxlen=self.maxlen,
                              approximate=False)
                    queued.append(outcome)
            if offsets:
                pipe.hset(self.keys.offsets, mapping=offsets)
                pipe.set(self.keys.updated_at, rfc3339(self.clock()))
            replies = pipe.execute(raise_on_error=False)

        refused = {id(o) for o, reply in zip(queued, replies, strict=False)
                   if o is not None and self._refused(reply)}
        self._refused_anything_else(replies)
        for outcome, delivery in zip(outcomes, fresh, strict=True):
            reason = "duplicate" if id(outcome) in refused else outcome.skipped
            if reason is not None:
                result.skipped[reason] += 1
                continue
            result.applied += 1
            self.metrics.applied.labels(delivery.record.meta.event_type).inc()  # type: ignore[attr-defined]
        self.metrics.batches.inc()
        return result

    @staticmethod
    def _refused(reply: object) -> bool:
        """True when `reply` is Redis refusing an XADD at or below the stream's top."""
        return isinstance(reply, redis.ResponseError) and _DUPLICATE_ID in str(reply)

    def _refused_anything_else(self, replies: Iterable[object]) -> None:
        for reply in replies:
            if isinstance(reply, redis.ResponseError) and not self._refused(reply):
                raise ProjectionError(f"Redis refused a write of the projection: {reply}")

    def _task_ids(self, deliveries: Iterable[Delivery]) -> list[str]:
        ids = set()
        for d in deliveries:
            if d.message.topic() == self.commands_topic:
                if d.record.meta.event_type == SUBMIT_TASK:  # type: ignore[attr-defined]
                    ids.add(d.record.task_id)  # type: ignore[attr-defined]
            else:
                ids.add(d.record.meta.aggregate_id)  # type: ignore[attr-defined]
        return sorted(ids)

    def _statuses(self, task_ids: list[str]) -> dict[str, dict[str, str] | None]:
        if not task_ids:
            return {}
        with self.client.pipeline(transaction=False) as reads:
            for task_id in task_ids:
                reads.hgetall(self.keys.status(task_id))
            found = reads.execute()
        return {task_id: ({_text(k): _text(v) for k, v in fields.items()} or None)
                for task_id, fields in zip(task_ids, found, strict=True)}

    def _decide(self, deliveries: list[Delivery], before: Mapping[str, dict[str, str] | None]
                ) -> tuple[list[Outcome], dict[str, dict[str, str]]]:
        current = dict(before)
        outcomes = []
        traced = tracing.enabled()
        for d in deliveries:
            message = d.message
            meta = d.record.meta  # type: ignore[attr-defined]
            with (tracing.span_for(meta, f"project {meta.event_type}",
                                   **{"omc.projection": "redis"})
                  if traced else contextlib.nullcontext()):  # a span per event, when tracing
                if message.topic() == self.commands_topic:
                    outcome = on_command(current.get(getattr(d.record, "task_id", "")),
                                         d.record)
                else:
                    outcome = on_event(current.get(meta.aggregate_id), d.record,
                                       message.topic(), message.partition(), message.offset())
            if outcome.status is not None:
                current[outcome.task_id] = outcome.status
            outcomes.append(outcome)
        changed = {t: s for t, s in current.items() if s is not None and s != before.get(t)}
        return outcomes, changed

    def _commit_to_group(self, offsets: Mapping[str, int]) -> None:
        """Mirror the offsets to the consumer group, for lag tools; Redis stays the truth."""
        if self.consumer is None or not offsets:
            return
        tps = []
        for where, offset in offsets.items():
            topic, _, partition = where.rpartition("/")
            tps.append(TopicPartition(topic, int(partition), offset))
        try:
            self.consumer.commit(offsets=tps, asynchronous=True)
        except KafkaException as error:
            log.debug("mirroring offsets to the group failed: %s", error)

    def _update_lag(self, positions: Mapping[str, int]) -> None:
        if self.consumer is None:
            return
        for tp in self.consumer.assignment():
            where = _where(tp.topic, tp.partition)
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            position = positions.get(where, self._saved.get(where, 0))
            if high >= 0:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - position))

    def caught_up(self) -> bool:
        """True when every partition of both topics is assigned here and fully applied."""
        if self.consumer is None:
            return False
        assignment = self.consumer.assignment()
        metadata = self.consumer.list_topics(timeout=10)
        expected = sum(len(metadata.topics[t].partitions)
                       for t in (self.commands_topic, self.events_topic)
                       if t in metadata.topics)
        if len(assignment) < expected:
            return False
        for tp in assignment:
            low, high = self.consumer.get_watermark_offsets(tp, timeout=10)
            (position,) = self.consumer.position([tp])
            at = position.offset if position.offset >= 0 else max(
                self._saved.get(_where(tp.topic, tp.partition), 0), low)
            if at < high:
                return False
        return True

    # -- the loop --------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool], *, until_caught_up: bool = False,
            attempts: int = 8, backoff: float = 0.5, max_backoff: float = 30.0) -> None:
        """Apply batches until `should_stop()` (or, with `until_caught_up`, until every
        partition is applied). An infrastructure error is retried on a new consumer after
        `backoff` seconds, doubling up to `max_backoff`; after `attempts` failures in a row
        `InfrastructureDown` is raised."""
        failures = 0
        try:
            while not should_stop():
                try:
                    count = self.step()
                    failures = 0
                    if until_caught_up and count == 0 and self.caught_up():
                        return
                except INFRASTRUCTURE_ERRORS as error:
                    failures += 1
                    self.metrics.retries.inc()
                    self.close()
                    if failures >= attempts:
                        raise InfrastructureDown(
                            f"giving up after {failures} attempts: {type(error).__name__}: "
                            f"{error}") from error
                    pause = min(backoff * 2 ** (failures - 1), max_backoff)
                    log.warning("infrastructure error (attempt %d of %d), retrying in %.1fs: "
                                "%s: %s", failures, attempts, pause, type(error).__name__,
                                error)
                    deadline = time.monotonic() + pause
                    while time.monotonic() < deadline and not should_stop():
                        time.sleep(min(0.1, pause))
        finally:
            self.close()
