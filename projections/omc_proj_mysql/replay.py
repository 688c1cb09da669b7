"""Rebuild the MySQL read model from the log, compare it with the live one, swap it in.

    replay(settings)                 rebuild into a shadow database `<db>_shadow_<stamp>` from
                                     offset 0 of every partition up to the high watermarks
                                     taken at the start; compare every table with the live one
                                     (row count, an order-independent 128-bit digest of every
                                     column of every row, and CHECKSUM TABLE); then swap:
                                     one `RENAME TABLE live.t TO old.t, shadow.t TO live.t, …`
                                     over every table, projection_offsets included
    replay(settings, until=…)        "state as of": the same rebuild up to a time (Kafka
                                     message timestamps ≤ it) or up to and including one
                                     message (`topic/partition@offset`; the other partitions up
                                     to that message's timestamp), into `omc_asof_<stamp>`,
                                     which is kept and named; nothing is compared or swapped

Only Kafka, the schema registry and MySQL are used: nothing is called again (no model, no
chain), and nothing is written to Kafka (poison messages were dead-lettered by the live
projector; the rebuild skips them the same way).

Swapping while the live projector runs is safe: its offsets move with the tables, so its next
batch finds the database's offsets different from the ones it expected, drops that batch and
seeks back to them (see `projector`), re-applying whatever the live tables had beyond the
rebuild's end. The RENAME waits for the live projector's open transaction, if any, and is
atomic. The replaced tables are dropped (or kept in `<db>_old_<stamp>` with keep_old).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import mysql.connector
from confluent_kafka import Consumer, KafkaException
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from omc_config import Settings
from omc_errors import OmcError
from omc_events.codec import Codec
from omc_kafka.consumer import consumer_config
from omc_proj_mysql import migrations
from omc_proj_mysql.apply import HANDLERS
from omc_proj_mysql.convert import utc
from omc_proj_mysql.metrics import Metrics
from omc_proj_mysql.projector import (
    PROJECTION,
    TOPICS,
    Item,
    Partition,
    Projector,
    refused_data,
)
from omc_proj_mysql.store import Literals, View, save_offsets, write_pending
from omc_proj_mysql.tables import ALL, OFFSETS, ROWS, Mode, Table
from omc_store.mysql import connect

log = logging.getLogger("omc_proj_mysql.replay")
POSITION = re.compile(r"(?P<topic>[A-Za-z0-9._-]+)/(?P<partition>\d+)@(?P<offset>\d+)")
TIMEOUT = 30
STALL = 120.0
"""Seconds without a message, before the end, after which a rebuild gives up."""


class ReplayError(OmcError):
    """The rebuild could not be made, compared or swapped in."""


@dataclass(frozen=True)
class Digest:
    """What a table holds, in three numbers that change when any byte of any row does."""

    rows: int
    digest: str
    checksum: int | None

    def __str__(self) -> str:
        return f"{self.rows} rows, digest {self.digest[:16]}…, checksum {self.checksum}"


@dataclass
class Report:
    database: str
    ends: dict[Partition, int]
    records: int = 0
    seconds: float = 0.0
    live: dict[str, Digest] = field(default_factory=dict)
    rebuilt: dict[str, Digest] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    live_offsets: dict[Partition, int] = field(default_factory=dict)
    swapped: bool = False
    old_database: str | None = None

    @property
    def equal(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        out = [f"rebuilt {self.database} from offset 0 to "
               f"{sum(self.ends.values())} messages' end in {self.seconds:.1f}s "
               f"({self.records} records applied)"]
        for name, rebuilt in self.rebuilt.items():
            live = self.live.get(name)
            mark = "" if live is None else ("  same as live" if live == rebuilt
                                           else f"  DIFFERS from live: {live}")
            out.append(f"  {name}: {rebuilt}{mark}")
        out += [f"difference: {d}" for d in self.differences]
        if self.swapped:
            out.append("swapped the rebuilt tables in"
                       + (f"; the replaced ones are in {self.old_database}"
                          if self.old_database else ""))
        return out


# -- digests ----------------------------------------------------------------------------------


def digest(connection, database: str, table: Table) -> Digest:
    """Rows, an order-independent digest of every column of every row (XOR of each row's
    MD5 over QUOTE()d values, 128 bits), and MariaDB's CHECKSUM TABLE. projection_offsets
    is digested without its wall-clock updated_at."""
    columns = [c for c in table.columns if not (table is OFFSETS and c == "updated_at")]
    quoted = ", ".join(f"QUOTE(`{c}`)" for c in columns)
    cursor = connection.cursor()
    try:
        # our own identifiers, no values:
        sql = (
            "SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(LEFT(h, 16), 16, 10) AS UNSIGNED)), 0),"  # noqa: S608
            " COALESCE(BIT_XOR(CAST(CONV(RIGHT(h, 16), 16, 10) AS UNSIGNED)), 0)"
            f" FROM (SELECT MD5(CONCAT_WS('|', {quoted})) AS h"
            f" FROM `{database}`.`{table.name}`) AS rows_")
        cursor.execute(sql)
        count, high, low = cursor.fetchone()
        checksum = None
        if table is not OFFSETS:
            cursor.execute(f"CHECKSUM TABLE `{database}`.`{table.name}` EXTENDED")
            checksum = cursor.fetchone()[1]
        return Digest(int(count), f"{int(high):016x}{int(low):016x}",
                      int(checksum) if checksum is not None else None)
    finally:
        cursor.close()
        connection.rollback()


def digests(connection, database: str, tables: Sequence[Table] = ALL) -> dict[str, Digest]:
    return {table.name: digest(connection, database, table) for table in tables}


# -- positions ------------------------------------------------------------------------------


def partitions(consumer: Consumer, topics: Sequence[str]) -> list[Partition]:
    metadata = consumer.list_topics(timeout=TIMEOUT)
    found = []
    for topic in topics:
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            raise ReplayError(f"topic {topic} does not exist on {consumer}")
        found += [(topic, p) for p in sorted(described.partitions)]
    return found


def high_watermarks(consumer: Consumer, parts: Sequence[Partition]) -> dict[Partition, int]:
    return {(t, p): consumer.get_watermark_offsets(KafkaPartition(t, p), timeout=TIMEOUT)[1]
            for t, p in parts}


def ends_at_time(consumer: Consumer, parts: Sequence[Partition],
                 moment: datetime) -> dict[Partition, int]:
    """Per partition, the first offset whose message timestamp is after `moment`."""
    millis = int(moment.timestamp() * 1000) + 1
    found = consumer.offsets_for_times([KafkaPartition(t, p, millis) for t, p in parts],
                                       timeout=TIMEOUT)
    highs = high_watermarks(consumer, parts)
    ends = {}
    for tp in found:
        key = (tp.topic, tp.partition)
        ends[key] = highs[key] if tp.offset < 0 else tp.offset  # -1: none after it: the end
    return ends


def message_time(consumer: Consumer, topic: str, partition: int, offset: int) -> datetime:
    """The Kafka timestamp of one message."""
    consumer.assign([KafkaPartition(topic, partition, offset)])
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error() is not None:
                continue
            if message.offset() != offset:
                break
            _, millis = message.timestamp()
            return datetime.fromtimestamp(millis / 1000, UTC)
    finally:
        consumer.unassign()
    raise ReplayError(f"no message at {topic}/{partition}@{offset}")


def parse_until(text: str) -> datetime | tuple[str, int, int]:
    """An RFC 3339 time (UTC if no offset is given) or `topic/partition@offset`."""
    match = POSITION.fullmatch(text.strip())
    if match:
        return match["topic"], int(match["partition"]), int(match["offset"])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(f"--until {text!r} is neither an RFC 3339 time (e.g. "
                          "2026-11-25T12:00:00Z) nor topic/partition@offset") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- rebuild --------------------------------------------------------------------------------


def create_database(settings: Settings, name: str) -> None:
    admin = connect(settings, "")
    try:
        admin.cursor().execute(f"CREATE DATABASE `{name}`")
        connection = connect(settings, name)
        try:
            migrations.apply(connection)
        finally:
            connection.close()
    finally:
        admin.close()


def drop_database(settings: Settings, name: str) -> None:
    admin = connect(settings, "")
    try:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        admin.close()


def rebuild(settings: Settings, database: str, ends: dict[Partition, int], *,
            codec: Codec | None = None, batch_size: int = 5000,
            progress: Callable[[str], None] = log.info, workers: int | None = None) -> int:
    """Apply every message from offset 0 up to `ends` into `database` (migrated, empty);
    returns the records applied. Partitions that split by key are rebuilt by several
    processes (`partition_groups`, `_parallel`; `workers=1`: one process), each pipelined
    (`_pipelined`); if MySQL refuses a row (a value too long for its column), the tables are
    emptied and the rebuild runs again as the projector does (`_projected`), skipping the
    refused records the same way."""
    codec = codec or Codec(SchemaRegistryClient({"url": settings.schema_registry_url}))
    groups = partition_groups(settings, ends, workers)
    try:
        if len(groups) > 1:
            try:
                return _parallel(settings, database, groups, codec, batch_size, progress)
            except Overlap as overlap:
                progress(f"{overlap}; rebuilding again in one process")
                empty(settings, database)
        return _pipelined(settings, database, ends, codec, batch_size, progress)
    except mysql.connector.Error as error:
        if not refused_data(error):
            raise
        progress(f"MySQL refused a row ({error}); rebuilding again record by record")
    empty(settings, database)
    return _projected(settings, database, ends, codec, batch_size, progress)


# -- in parallel ------------------------------------------------------------------------------


class Overlap(ReplayError):
    """Two groups of partitions touched one row: the partitions do not split by key."""


class _Refused(ReplayError):
    """A worker's MySQL refused a row (the parent falls back to the projector's path)."""


def partition_groups(settings: Settings, ends: dict[Partition, int],
                     workers: int | None = None) -> list[dict[Partition, int]]:
    """`ends` split into groups that can be rebuilt by separate processes: partition p of
    every topic goes to group p % n, where n divides the partition count of every topic with
    more than one, so the messages of one key (hashed alike in every topic: the same
    aggregate's commands and events) fall into one group. n is at most `workers` (default:
    the largest divisor not above max(4, CPUs)). One group when nothing divides."""
    if workers == 1 or len(ends) < 2:
        return [dict(ends)]
    probe = Consumer(consumer_config(settings, f"omc.proj.mysql.replay.{uuid.uuid4().hex}"))
    try:
        metadata = probe.list_topics(timeout=TIMEOUT)
        counts = {topic: len(metadata.topics[topic].partitions)
                  for topic in {t for t, _ in ends} if topic in metadata.topics}
    except KafkaException:
        return [dict(ends)]
    finally:
        probe.close()
    if len(counts) < len({t for t, _ in ends}):
        return [dict(ends)]
    shared = 0
    for count in counts.values():
        if count > 1:
            shared = math.gcd(shared, count)
    limit = workers or max(4, os.cpu_count() or 1)
    n = max((d for d in range(1, min(shared, limit) + 1) if shared % d == 0), default=1)
    if n < 2:
        return [dict(ends)]
    groups: list[dict[Partition, int]] = [{} for _ in range(n)]
    for (topic, partition), end in ends.items():
        groups[partition % n][(topic, partition)] = end
    return [group for group in groups if group]


def _parallel(settings: Settings, database: str, groups: list[dict[Partition, int]],
              codec: Codec, batch_size: int, progress: Callable[[str], None]) -> int:
    """Each group rebuilt by its own process (`_pipelined`, so decoding and folding use
    every core), into the same database; the rows each group read or wrote must be its own
    (checked afterwards: `Overlap` if not, and the caller starts again in one process)."""
    connection = connect(settings, database)
    try:
        if _offsets(connection, database):
            raise ReplayError(f"{database} is not empty: a rebuild starts from nothing")
    finally:
        connection.close()
    progress(f"rebuilding in {len(groups)} processes, partitions split by number "
             f"modulo {len(groups)}")
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_group_worker, name=f"omc-replay-{n}", daemon=True,
                                 args=(n, settings, database, group, codec.catalogue,
                                       batch_size, results))
                 for n, group in enumerate(groups)]
    for process in processes:
        process.start()
    records, owners, outcomes = 0, {}, 0
    try:
        while outcomes < len(processes):
            try:
                n, kind, value = results.get(timeout=5)
            except queue.Empty:
                dead = [p for p in processes if p.exitcode not in (None, 0)]
                if dead:
                    raise ReplayError(f"replay process {dead[0].name} died (exit code "
                                      f"{dead[0].exitcode})") from None
                continue
            outcomes += 1
            if kind == "refused":
                raise _Refused(value)
            if kind == "error":
                raise ReplayError(f"replay process {n}: {value}")
            applied, touched = value
            records += applied
            for key in touched:
                other = owners.setdefault(key, n)
                if other != n:
                    raise Overlap(f"row {key[1]} of {key[0]} belongs to two partition groups")
    except _Refused as refused:
        raise mysql.connector.errors.DataError(str(refused)) from None
    finally:
        for process in processes:
            process.join(timeout=0 if outcomes < len(processes) else 30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
    return records


def _group_worker(n: int, settings: Settings, database: str, ends: dict[Partition, int],
                  catalogue, batch_size: int, results) -> None:
    """One group's rebuild, in its own process; reports (records, rows touched) or why not."""
    try:
        codec = Codec(SchemaRegistryClient({"url": settings.schema_registry_url}),
                      catalogue=catalogue)
        touched: set = set()
        applied = _pipelined(settings, database, ends, codec, batch_size, log.info,
                             touched=touched, fresh=False)
        results.put((n, "done", (applied, touched)))
    except mysql.connector.Error as error:
        results.put((n, "refused" if refused_data(error) else "error", f"MySQL: {error}"))
    except BaseException as error:  # reported to the parent, which raises it
        results.put((n, "error", f"{type(error).__name__}: {error}"))


def empty(settings: Settings, database: str) -> None:
    connection = connect(settings, database)
    try:
        for table in ALL:
            connection.cursor().execute(f"TRUNCATE TABLE `{table.name}`")
    finally:
        connection.close()


def _projected(settings: Settings, database: str, ends: dict[Partition, int], codec: Codec,
               batch_size: int, progress: Callable[[str], None]) -> int:
    """The rebuild as the projector applies batches (rows loaded, refused rows skipped)."""
    consumer = Consumer(consumer_config(settings, f"omc.proj.mysql.replay.{uuid.uuid4().hex}",
                                        **{"fetch.max.bytes": 64 * 1024 * 1024}))
    projector = Projector(lambda: connect(settings, database), consumer, codec,
                          dead_letters=None, metrics=Metrics(), batch_size=batch_size)
    projector.limits = dict(ends)
    records, last_report, last_progress = 0, time.monotonic(), time.monotonic()
    try:
        projector.assign(ends)
        while not projector.reached(ends):
            applied = projector.step()
            if applied is not None:
                records += applied.records
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > STALL:
                raise ReplayError(f"no message came for {STALL:.0f}s before the end offsets "
                                  f"{ends} were reached (at {projector.expected})")
            if time.monotonic() - last_report > 10:
                progress(f"replayed {records} records so far")
                last_report = time.monotonic()
    finally:
        projector.close()
    return records


def _pipelined(settings: Settings, database: str, ends: dict[Partition, int], codec: Codec,
               batch_size: int, progress: Callable[[str], None], *,
               touched: set | None = None, fresh: bool = True) -> int:
    """The same `apply` functions as the projector, in a pipeline of three threads so that
    Python and MySQL work at the same time: a reader polls and decodes, this thread folds
    each batch into rows, a writer upserts them and the batch's offsets in one transaction.
    Since the database starts empty and only this rebuild writes it, the rows a batch needs
    are taken from memory (the rows folded so far) instead of being loaded. `touched`
    collects (table name, key) of every folded or merged row read or written; `fresh=False`
    skips the check that the database is empty (other groups write it at the same time).
    """
    consumer = Consumer(consumer_config(settings, f"omc.proj.mysql.replay.{uuid.uuid4().hex}",
                                        **{"fetch.max.bytes": 64 * 1024 * 1024}))
    projector = Projector(lambda: connect(settings, database), consumer, codec,
                          dead_letters=None, metrics=Metrics(), batch_size=batch_size)
    projector.limits = dict(ends)
    if fresh and projector.offsets():
        projector.close()
        raise ReplayError(f"{database} is not empty: a rebuild starts from nothing")
    read: queue.Queue[list[Item] | BaseException] = queue.Queue(maxsize=2)
    folded: queue.Queue[tuple[dict, dict] | None] = queue.Queue(maxsize=2)
    stop, failures = threading.Event(), []

    def reader() -> None:
        try:
            while not stop.is_set():
                items = projector.poll()
                while items and not stop.is_set():
                    with contextlib.suppress(queue.Full):
                        read.put(items, timeout=0.5)
                        break
        except BaseException as error:  # handed to the folding thread
            read.put(error)

    def writer() -> None:
        connection = connect(settings, database)
        try:
            cursor = connection.cursor()
            # several groups' writers share the tables: no gap locks between their batches
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            literal = Literals.of(cursor)
            while (work := folded.get()) is not None:
                pending, offsets = work
                write_pending(cursor, literal, pending)
                save_offsets(cursor, literal, PROJECTION, offsets, utc(datetime.now(UTC)))
                connection.commit()
        except BaseException as error:  # handed to the folding thread
            failures.append(error)
            stop.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=reader, name="omc-replay-reader", daemon=True),
               threading.Thread(target=writer, name="omc-replay-writer", daemon=True)]
    rows: dict[Table, dict] = {table: {} for table in ROWS if table.mode is Mode.FOLD}
    positions: dict[Partition, int] = {}
    lows = {key: consumer.get_watermark_offsets(KafkaPartition(*key), timeout=TIMEOUT)[0]
            for key in ends}
    records, last_report, last_progress = 0, time.monotonic(), time.monotonic()
    try:
        projector.assign(ends)
        for thread in threads:
            thread.start()
        while any(positions.get(key, lows[key]) < end for key, end in ends.items()):
            if failures:
                raise failures[0]
            try:
                items = read.get(timeout=1)
            except queue.Empty:
                if time.monotonic() - last_progress > STALL:
                    raise ReplayError(f"no message came for {STALL:.0f}s before the end "
                                      f"offsets {ends} were reached (at {positions})") from None
                continue
            if isinstance(items, BaseException):
                raise items
            last_progress = time.monotonic()
            pending, offsets, applied = _fold(items, rows, positions, touched)
            records += applied
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    folded.put((pending, offsets), timeout=0.5)
                    break
            if time.monotonic() - last_report > 10:
                progress(f"replayed {records} records so far")
                last_report = time.monotonic()
        folded.put(None)
        threads[1].join()
        if failures:
            raise failures[0]
    finally:
        stop.set()
        with contextlib.suppress(queue.Full):
            folded.put_nowait(None)
        for thread in threads:
            thread.join(timeout=60)
        projector.close()
    return records


def _fold(items: list[Item], rows: dict[Table, dict], positions: dict[Partition, int],
          touched: set | None = None) -> tuple[dict, dict, int]:
    """One batch folded as the projector folds it, the rows it needs taken from `rows` (all
    rows folded so far), which it then updates; returns (rows to write, offsets, records).
    `touched` (if given) gets (table name, key) of every row read, folded or merged."""
    view, offsets, applied = View(), {}, 0
    for item in items:
        key = (item.at.topic, item.at.partition)
        if item.at.offset < positions.get(key, 0):
            continue
        offsets[key] = positions[key] = item.at.offset + 1
        record = item.record
        handler = HANDLERS.get(record.SCHEMA) if record is not None else None
        if handler is None:
            continue
        for table, row_key in handler.loads(record):
            if touched is not None:
                touched.add((table.name, row_key))
            known = rows[table].get(row_key)
            if known is not None:
                view.loaded[table][row_key] = known
        handler.apply(view, record, item.at)
        applied += 1
    for table, changed in view.pending.items():
        if table in rows:
            rows[table].update(changed)
        if touched is not None and table.mode is not Mode.INSERT:
            touched.update((table.name, key) for key in changed)
    return dict(view.pending), offsets, applied


def replay(settings: Settings, *, database: str | None = None,
           topics: Sequence[str] = TOPICS, until: str | None = None, swap: bool = True,
           keep_old: bool = False, batch_size: int = 5000, codec: Codec | None = None,
           progress: Callable[[str], None] = log.info) -> Report:
    """Rebuild the projection (see the module docstring); the report says what happened."""
    live = database or settings.mysql.database
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:4]
    probe = Consumer(consumer_config(settings, f"omc.proj.mysql.replay.{uuid.uuid4().hex}"))
    try:
        parts = partitions(probe, topics)
        if until is None:
            target, ends = f"{live}_shadow_{stamp}", high_watermarks(probe, parts)
        else:
            bound = parse_until(until)
            if isinstance(bound, tuple):
                topic, partition, offset = bound
                if (topic, partition) not in parts:
                    raise ReplayError(f"{topic}/{partition} is not a partition of the "
                                      f"topics replayed ({', '.join(topics)})")
                moment = message_time(probe, topic, partition, offset)
                ends = ends_at_time(probe, parts, moment)
                ends[(topic, partition)] = offset + 1
            else:
                moment = bound
                ends = ends_at_time(probe, parts, moment)
            target = asof_name(settings, moment)
    except KafkaException as error:
        raise ReplayError(f"Kafka: {error}") from error
    finally:
        probe.close()
    if len(target) > 64:
        raise ReplayError(f"database name {target} is longer than MySQL's 64 characters")
    report = Report(target, ends)
    try:
        create_database(settings, target)
        started = time.perf_counter()
        report.records = rebuild(settings, target, ends, codec=codec, batch_size=batch_size,
                                 progress=progress)
        report.seconds = time.perf_counter() - started
        connection = connect(settings, target)
        try:
            report.rebuilt = digests(connection, target, ROWS)
            if until is None:
                report.live = digests(connection, live, ROWS)
                report.live_offsets = _offsets(connection, live)
                report.differences = compare(report, _offsets(connection, target))
        finally:
            connection.close()
        if until is None and swap:
            report.old_database = f"{live}_old_{stamp}"
            swap_in(settings, live, target, report.old_database)
            report.swapped = True
            if not keep_old:
                drop_database(settings, report.old_database)
                report.old_database = None
        if until is None:
            drop_database(settings, target)  # emptied by the swap, or not wanted
    except BaseException as error:
        if not report.swapped:  # a half-made rebuild is of no use: nothing is left behind
            _quietly(drop_database, settings, target)
        if isinstance(error, mysql.connector.Error):
            raise ReplayError(f"MySQL: {error}") from error
        raise
    return report


def compare(report: Report, rebuilt_offsets: dict[Partition, int]) -> list[str]:
    found = []
    if report.live_offsets != rebuilt_offsets:
        behind = {f"{t}/{p}": (report.live_offsets.get((t, p)), o)
                  for (t, p), o in rebuilt_offsets.items()
                  if report.live_offsets.get((t, p)) != o}
        found.append("the live projection is at other offsets than the rebuild (live, "
                     f"rebuilt): {behind}; rows may differ by the messages in between")
    for name, rebuilt in report.rebuilt.items():
        live = report.live.get(name)
        if live != rebuilt:
            found.append(f"{name}: live {live}, rebuilt {rebuilt}")
    return found


def swap_in(settings: Settings, live: str, rebuilt: str, old: str) -> None:
    """Replace every table of `live` by `rebuilt`'s in one atomic RENAME TABLE."""
    admin = connect(settings, "")
    try:
        cursor = admin.cursor()
        cursor.execute(f"CREATE DATABASE `{old}`")
        renames = []
        for table in ALL:
            renames.append(f"`{live}`.`{table.name}` TO `{old}`.`{table.name}`")
            renames.append(f"`{rebuilt}`.`{table.name}` TO `{live}`.`{table.name}`")
        cursor.execute("RENAME TABLE " + ", ".join(renames))
    finally:
        admin.close()


def asof_name(settings: Settings, moment: datetime) -> str:
    """`omc_asof_<UTC time>`, with a suffix if that database exists already."""
    base = "omc_asof_" + moment.astimezone(UTC).strftime("%Y%m%d_%H%M%S")
    if moment.microsecond:
        base += f"_{moment.astimezone(UTC).microsecond:06d}"
    admin = connect(settings, "")
    try:
        cursor = admin.cursor()
        cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE "
                       "SCHEMA_NAME LIKE %s", (base.replace("_", "\\_") + "%",))
        taken = {row[0] for row in cursor.fetchall()}
    finally:
        admin.close()
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def _offsets(connection, database: str) -> dict[Partition, int]:
    cursor = connection.cursor()
    try:
        cursor.execute(f"SELECT topic, `partition`, next_offset FROM `{database}`."  # noqa: S608
                       "projection_offsets WHERE projection = %s", (PROJECTION,))
        return {(t, int(p)): int(o) for t, p, o in cursor.fetchall()}
    finally:
        cursor.close()
        connection.rollback()


def _quietly(action: Callable[..., object], *args: object) -> None:
    try:
        action(*args)
    except mysql.connector.Error:
        log.warning("cleaning up after a failed replay failed", exc_info=True)


__all__ = ["Digest", "ReplayError", "Report", "compare", "digest", "digests", "parse_until",
           "rebuild", "replay", "swap_in"]
