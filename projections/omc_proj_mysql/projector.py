"""The MySQL projector: the log folded into the read model's tables.

    consumes   omc.commands.v1 (SubmitTask, RegisterAgent: rows before the runtime answers),
               omc.task.events.v1, omc.agent.events.v1, omc.tx.events.v1, omc.proof.events.v1
    produces   omc.deadletter.v1 (messages that do not decode)
    group      omc.proj.mysql — for partition assignment only: positions live in MySQL
    guarantee  each batch is ONE MySQL transaction: lock this projection's rows of
               `projection_offsets` for the batch's partitions (SELECT … FOR UPDATE), so
               instances of the group on other partitions run in parallel; skip messages
               below the stored
               next offsets, load the rows the batch touches, fold the records into them
               (`apply`), upsert them (guarded by aggregate sequence), save the new offsets,
               commit. A crash at any point loses or doubles nothing; the consumer group's
               committed offsets are never used (enable.auto.commit off, nothing committed).
    state      none in memory between batches but the expected position of each partition;
               when the database's offsets differ from it (a rebuild swapped the tables in,
               another instance wrote), the partition is sought back to the database's offset

Poison messages (they do not decode) go to the dead-letter topic and their offsets advance. A
record that decodes but that MySQL refuses (a value too long for its column) is dead-lettered
the same way, after the batch is retried one record at a time. Infrastructure errors (Kafka,
MySQL, the registry) are retried with exponential backoff; then `InfrastructureFailure` is
raised, and `python -m omc_proj_mysql` exits non-zero for its supervisor to restart it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import mysql.connector
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaPartition

from omc_errors import OmcError
from omc_events.codec import CodecError, Undecodable, UnknownSchema
from omc_events.record import Record
from omc_kafka.consumer import EventConsumer
from omc_obs import tracing
from omc_obs.handling import bound_to
from omc_proj_mysql.apply import HANDLERS, At
from omc_proj_mysql.convert import utc
from omc_proj_mysql.metrics import Metrics
from omc_proj_mysql.store import Literals, View, load, lock_offsets, save_offsets, write

log = logging.getLogger("omc_proj_mysql")

PROJECTION = "mysql"
GROUP = "omc.proj.mysql"
TOPICS = ("omc.commands.v1", "omc.task.events.v1", "omc.agent.events.v1", "omc.tx.events.v1",
          "omc.proof.events.v1")

_TRANSIENT_MYSQL = (mysql.connector.errors.OperationalError,
                    mysql.connector.errors.InterfaceError)
_TRANSIENT_ERRNOS = {1040, 1053, 1205, 1213, 1927}  # too many connections, shutdown, lock wait
#                                                   timeout, deadlock, connection killed
_MISSING_TABLE = {1146, 1049}  # no such table / database: migrations not applied
_DATA_ERRORS = {1048, 1264, 1292, 1366, 1406, 3140, 4025}  # the row's values are refused


class InfrastructureFailure(OmcError):
    """Kafka, MySQL or the schema registry kept failing after every retry."""


class NotMigrated(OmcError):
    """The read model's tables are missing: run `omc db migrate`."""


class RegistryTrouble(OmcError):
    """The schema registry failed (not a poison message): retried, never dead-lettered."""


Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Item:
    """One message of a batch: where it was read, its record (None: dead-lettered)."""

    at: At
    record: Record | None
    message: Message | None = None


@dataclass
class Applied:
    """What one batch did."""

    records: int = 0
    skipped: int = 0
    unknown: int = 0
    rows: int = 0
    moved: set[Partition] = field(default_factory=set)
    offsets: dict[Partition, int] = field(default_factory=dict)


class DeadLetterGate:
    """What `EventConsumer` hands poison messages to: the dead-letter writer (None in a
    replay, which never writes them again) and the positions, so their offsets advance.

    A registry outage is not poison: it is raised (and the batch retried), never dead-lettered.
    """

    def __init__(self, dead_letters=None) -> None:
        self.dead_letters = dead_letters
        self.positions: list[tuple[At, Message, BaseException]] = []

    def send(self, message: Message, error: BaseException, attempts: int = 1) -> None:
        if isinstance(error, CodecError) and not isinstance(error, Undecodable | UnknownSchema):
            raise RegistryTrouble(f"schema registry: {error}") from error
        if self.dead_letters is not None:
            self.dead_letters.send(message, error, attempts)
        self.positions.append((At(message.topic(), message.partition(), message.offset()),
                               message, error))

    def take(self) -> list[tuple[At, Message, BaseException]]:
        taken, self.positions = self.positions, []
        return taken


class Projector:
    """Folds batches of records into the read model, one MySQL transaction per batch."""

    def __init__(self, connect: Callable[[], object], consumer: Consumer, codec, *,
                 dead_letters=None, projection: str = PROJECTION,
                 metrics: Metrics | None = None, batch_size: int = 2000,
                 poll_timeout: float = 0.5, retries: int = 6, backoff: float = 0.5,
                 max_backoff: float = 10.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.connect = connect
        self.consumer = consumer
        self.gate = DeadLetterGate(dead_letters)
        self.events = EventConsumer(consumer, codec, self.gate)  # type: ignore[arg-type]
        self.projection = projection
        self.metrics = metrics or Metrics()
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.clock = clock
        self.expected: dict[Partition, int | None] = {}
        self.assigned: set[Partition] = set()
        self.last_occurred_at: datetime | None = None
        self.check_interval = 1.0
        self._checked = time.monotonic()
        self._lows: dict[Partition, int] = {}
        self._lag_at = 0.0
        self.limits: dict[Partition, int] = {}
        """Where to stop, per partition (replays): messages at or past it are not applied."""
        self._connection = None
        self._literal: Literals | None = None
        self._rewind = False

    # -- Kafka side ---------------------------------------------------------------------------

    def subscribe(self, topics: Sequence[str]) -> None:
        """Join the group; each assigned partition starts at the database's offset."""
        self.consumer.subscribe(list(topics), on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_revoke)

    def assign(self, partitions: Iterable[Partition]) -> None:
        """Read these partitions without a group (replays), from the database's offsets."""
        self._on_assign(self.consumer, [KafkaPartition(t, p) for t, p in partitions])

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        try:
            stored = self._with_retries("read offsets", self._read_offsets)
        except InfrastructureFailure:
            stored = None  # start at the beginning; the first batch seeks to the database's
        for tp in partitions:
            key = (tp.topic, tp.partition)
            offset = stored.get(key) if stored is not None else None
            tp.offset = offset if offset is not None else OFFSET_BEGINNING
            self.expected[key] = offset if stored is not None else -1
            self.assigned.add(key)
        consumer.assign(partitions)
        log.info("assigned %s", ", ".join(f"{tp.topic}/{tp.partition}@{tp.offset}"
                                           for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[KafkaPartition]) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self.expected.pop(key, None)
            self.assigned.discard(key)
            with contextlib.suppress(KeyError):  # no lag reported for it yet
                self.metrics.lag_messages.remove(self.projection, tp.topic, str(tp.partition))

    def poll(self) -> list[Item]:
        """The next batch: decoded records and dead-lettered positions, in offset order."""
        deliveries = self.events.poll(self.batch_size, self.poll_timeout)
        items = [Item(At(d.message.topic(), d.message.partition(), d.message.offset()),
                      d.record, d.message) for d in deliveries]
        for at, message, _ in self.gate.take():
            self.metrics.dead_letters.labels(self.projection, at.topic).inc()
            items.append(Item(at, None, message))
        items.sort(key=lambda item: item.at)
        if self.limits:
            items = self._within_limits(items)
        return items

    def _within_limits(self, items: list[Item]) -> list[Item]:
        kept, full = [], set()
        for item in items:
            key = (item.at.topic, item.at.partition)
            if key in self.limits and item.at.offset >= self.limits[key]:
                full.add(key)
            else:
                kept.append(item)
        if full:
            self.consumer.pause([KafkaPartition(t, p) for t, p in sorted(full)])
        return kept

    def reached(self, ends: dict[Partition, int], timeout: float = 10) -> bool:
        """Whether every partition in `ends` is applied up to its end offset. The first call
        looks up the partitions' low watermarks (where an empty partition ends); later ones
        do not call Kafka, so they may run while another thread polls."""
        missing = [key for key in ends if key not in self._lows]
        for topic, partition in missing:
            self._lows[(topic, partition)] = self.consumer.get_watermark_offsets(
                KafkaPartition(topic, partition), timeout=timeout)[0]
        for key, end in ends.items():
            expected = self.expected.get(key)
            if (expected is None or expected < end) and end > self._lows[key]:
                return False
        return True

    def _seek(self, targets: dict[Partition, int | None]) -> None:
        for (topic, partition), offset in targets.items():
            if (topic, partition) not in self.assigned:
                continue
            target = offset if offset is not None else OFFSET_BEGINNING
            self.consumer.seek(KafkaPartition(topic, partition, target))
            self.expected[(topic, partition)] = offset

    def rewind(self) -> None:
        """Seek every assigned partition back to the database's offsets (after an error that
        may have lost part of a polled batch)."""
        stored = self._read_offsets()
        self._seek({key: stored.get(key) for key in self.assigned})

    # -- MySQL side ---------------------------------------------------------------------------

    def _db(self):
        if self._connection is None:
            connection = self.connect()
            cursor = connection.cursor()
            self._literal = Literals.of(cursor)
            cursor.close()
            connection.commit()
            self._connection = connection
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # it is broken already; a new one is opened
                log.debug("closing a broken connection failed", exc_info=True)

    def _read_offsets(self) -> dict[Partition, int]:
        connection = self._db()
        cursor = connection.cursor()
        try:
            cursor.execute("SELECT topic, `partition`, next_offset FROM projection_offsets "
                           "WHERE projection = %s", (self.projection,))
            rows = cursor.fetchall()
        finally:
            cursor.close()
            connection.rollback()
        return {(_text(t), int(p)): int(o) for t, p, o in rows}

    def offsets(self) -> dict[Partition, int]:
        """The positions stored with the rows."""
        return self._with_retries("read offsets", self._read_offsets)

    def apply(self, items: Sequence[Item], *, check_moved: bool = True) -> Applied:
        """Apply one batch in one transaction (see the module docstring)."""
        started = time.perf_counter()
        connection = self._db()
        cursor = connection.cursor()
        literal = self._literal
        applied = Applied()
        try:
            batch_partitions = {(i.at.topic, i.at.partition) for i in items}
            stored = lock_offsets(cursor, self.projection, batch_partitions)
            if check_moved:
                applied.moved = {p for p in batch_partitions
                                 if p in self.expected and self.expected[p] != stored.get(p)}
            view, todo, unknown, last_time = View(), [], [], None
            offsets: dict[Partition, int] = {}
            for item in items:
                key = (item.at.topic, item.at.partition)
                if key in applied.moved or item.at.offset < stored.get(key, -1):
                    applied.skipped += 1
                    continue
                offsets[key] = max(offsets.get(key, 0), item.at.offset + 1)
                record = item.record
                if record is None:
                    continue
                handler = HANDLERS.get(record.SCHEMA)
                if handler is None:
                    unknown.append(record.SCHEMA)
                    continue
                for table, row_key in handler.loads(record):
                    view.need(table, row_key)
                todo.append((handler, record, item.at))
            load(cursor, literal, view)
            traced = tracing.enabled()
            for handler, record, at in todo:
                if traced:  # a span per event, child of the trace its envelope carries
                    with tracing.span_for(record.meta, f"project {record.SCHEMA}",
                                          **{"omc.projection": self.projection}):
                        handler.apply(view, record, at)
                else:
                    handler.apply(view, record, at)
                last_time = record.meta.occurred_at  # type: ignore[attr-defined]
            applied.records = len(todo)
            applied.rows = write(cursor, literal, view)
            if offsets:
                save_offsets(cursor, literal, self.projection, offsets, utc(self.clock()))
            connection.commit()
        except BaseException:
            try:
                connection.rollback()
            except Exception:  # the connection is gone; the server rolled back
                self._drop_connection()
            raise
        finally:
            cursor.close()
        applied.offsets = offsets
        for key, offset in offsets.items():
            self.expected[key] = offset
        if applied.moved:
            self._seek({key: stored.get(key) for key in applied.moved})
            log.warning("offsets moved under this projector (a rebuild swapped the tables?): "
                        "sought %s back to the database's offsets",
                        ", ".join(f"{t}/{p}" for t, p in sorted(applied.moved)))
        if last_time is not None:
            self.last_occurred_at = last_time
        applied.unknown = len(unknown)
        for kind, count in Counter(unknown).items():
            self.metrics.unknown.labels(self.projection, kind).inc(count)
        for kind, count in Counter(record.SCHEMA for _, record, _ in todo).items():
            self.metrics.applied.labels(self.projection, kind).inc(count)
        self.metrics.batches.labels(self.projection).observe(time.perf_counter() - started)
        return applied

    def apply_safely(self, items: Sequence[Item]) -> Applied:
        """`apply` with retries of infrastructure errors; a batch that MySQL refuses for its
        data is applied one record at a time and the refused records dead-lettered."""
        try:
            return self._with_retries("apply a batch", lambda: self.apply(items))
        except mysql.connector.Error as error:
            if not refused_data(error):
                raise
            if len(items) == 1:
                return self._refuse(items[0], error)
            log.warning("MySQL refused a batch (%s); applying it one record at a time", error)
            total = Applied()
            for item in items:
                try:
                    one = self._with_retries("apply a record", lambda item=item: self.apply([item]))
                except mysql.connector.Error as refused:
                    if not refused_data(refused):
                        raise
                    one = self._refuse(item, refused)
                total.records += one.records
                total.skipped += one.skipped
                total.rows += one.rows
                total.offsets.update(one.offsets)
                total.moved |= one.moved
            return total

    def _refuse(self, item: Item, error: BaseException) -> Applied:
        with (bound_to(item.record) if item.record is not None else contextlib.nullcontext()):
            log.error("MySQL refused %s at %s/%s@%s: %s", getattr(item.record, "SCHEMA", "?"),
                      item.at.topic, item.at.partition, item.at.offset, error)
        if self.gate.dead_letters is not None and item.message is not None:
            self.gate.dead_letters.send(item.message, error)
        self.metrics.dead_letters.labels(self.projection, item.at.topic).inc()
        return self._with_retries("skip a refused record",
                                  lambda: self.apply([Item(item.at, None, item.message)]))

    def _with_retries(self, what: str, action: Callable[[], object]):
        delay = self.backoff
        for attempt in range(1, self.retries + 2):
            try:
                return action()
            except mysql.connector.Error as error:
                if getattr(error, "errno", None) in _MISSING_TABLE:
                    raise NotMigrated(f"the read model's tables are missing ({error.msg}); "
                                      "run `omc db migrate` first") from error
                if not _transient(error):
                    raise
                self._drop_connection()
                kind, problem = "mysql", error
            except (KafkaException, RegistryTrouble) as error:
                kind, problem = "kafka" if isinstance(error, KafkaException) else "registry", \
                    error
            if attempt > self.retries:
                raise InfrastructureFailure(
                    f"{what}: {kind} kept failing after {self.retries} retries: {problem}"
                ) from problem
            self.metrics.retries.labels(self.projection, kind).inc()
            log.warning("%s: %s error (attempt %d of %d), retrying in %.1fs: %s", what, kind,
                        attempt, self.retries + 1, delay, problem)
            time.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")

    # -- the loop -----------------------------------------------------------------------------

    def step(self) -> Applied | None:
        """Poll one batch and apply it (retrying); None when nothing came."""

        def poll() -> list[Item]:
            if self._rewind:
                self.rewind()
                self._rewind = False
            try:
                return self.poll()
            except BaseException:
                self._rewind = True  # part of a batch may be lost: reread from the database
                raise

        items = self._with_retries("poll", poll)
        applied = self.apply_safely(items) if items else None
        if applied is None and time.monotonic() - self._checked > self.check_interval:
            self._with_retries("check offsets", self.check_offsets)
        self.update_lag()
        return applied

    def check_offsets(self) -> None:
        """Seek partitions whose stored offsets moved while they were idle (a rebuild
        swapped in, another writer) back to the database's offsets."""
        self._checked = time.monotonic()
        if not self.assigned:
            return
        stored = self._read_offsets()
        moved = {key: stored.get(key) for key in self.assigned
                 if key in self.expected and self.expected[key] != stored.get(key)}
        if moved:
            self._seek(moved)
            log.warning("offsets moved under this projector while idle: sought %s back to "
                        "the database's offsets", ", ".join(f"{t}/{p}" for t, p in sorted(moved)))

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Apply batches until `should_stop()` (checked between batches), then close."""
        try:
            while not should_stop():
                self.step()
        finally:
            self.close()

    def update_lag(self, every: float = 1.0) -> None:
        """Set the lag gauges (at most once per `every` seconds)."""
        if time.monotonic() - self._lag_at < every:
            return
        self._lag_at = time.monotonic()
        total = 0
        for topic, partition in sorted(self.assigned):
            expected = self.expected.get((topic, partition))
            try:
                _, high = self.consumer.get_watermark_offsets(
                    KafkaPartition(topic, partition), cached=True)
            except KafkaException:
                continue
            if high is None or high < 0:
                continue
            if expected is None or expected < 0:
                low, _ = self.consumer.get_watermark_offsets(
                    KafkaPartition(topic, partition), cached=True)
                expected = max(low or 0, 0)
            lag = max(0, high - expected)
            total += lag
            self.metrics.lag_messages.labels(self.projection, topic, str(partition)).set(lag)
        if total == 0 or self.last_occurred_at is None:
            self.metrics.lag_seconds.labels(self.projection).set(0)
        else:
            age = (self.clock() - self.last_occurred_at).total_seconds()
            self.metrics.lag_seconds.labels(self.projection).set(max(0.0, age))

    def caught_up(self, timeout: float = 10) -> bool:
        """Whether every assigned partition is applied up to its high watermark (now)."""
        if not self.assigned:
            return False
        for topic, partition in self.assigned:
            low, high = self.consumer.get_watermark_offsets(KafkaPartition(topic, partition),
                                                            timeout=timeout)
            expected = self.expected.get((topic, partition))
            if expected is None or expected < 0:
                if high > low:
                    return False
            elif expected < high:
                return False
        return True

    def close(self) -> None:
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError):
            log.debug("closing the consumer failed", exc_info=True)
        self._drop_connection()


def _transient(error: BaseException) -> bool:
    """Whether a MySQL error is the server's or the network's (retry), not our rows'."""
    errno = getattr(error, "errno", None) or 0
    return isinstance(error, _TRANSIENT_MYSQL) or errno in _TRANSIENT_ERRNOS \
        or 2000 <= errno < 3000  # CR_*: client-side errors, i.e. no connection


def refused_data(error: BaseException) -> bool:
    """Whether MySQL refused the rows' values (not the connection, not our SQL)."""
    errors = mysql.connector.errors
    return isinstance(error, errors.DataError | errors.IntegrityError) \
        or getattr(error, "errno", None) in _DATA_ERRORS


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


__all__ = ["GROUP", "PROJECTION", "TOPICS", "Applied", "DeadLetterGate",
           "InfrastructureFailure", "Item", "NotMigrated", "Projector"]
