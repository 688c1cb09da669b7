"""Replay throughput: the MySQL read model rebuilt from offset 0 of its topics, against the
floor any replay pays, reading and decoding the same messages, measured in the same run.

    .venv/bin/python -m bench.replay [--events 1000000] [--batch 20000] [--keep]

The events (a coherent history, tests/integration/test_proj_mysql_support.History) are
produced once into topics `omc.bench.replay.<N>.<role>` and reused by later runs (--keep
leaves them; they are deleted otherwise). The rebuild is `omc_proj_mysql.replay.rebuild`, what
`omc replay mysql` runs: one consumer over every partition from offset 0 to the high watermarks,
one MySQL transaction per batch into a fresh database. The baseline consumes and decodes the
same messages with the same codec and no MySQL. Target: 1,000,000 events in under 60 s.
"""

from __future__ import annotations

import argparse
import platform
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient, NewTopic

from omc_config import Settings
from omc_kafka.consumer import consumer_config
from omc_proj_mysql import replay
from omc_proj_mysql.tables import ROWS
from tests.integration.test_proj_mysql_support import ROLES, History, Log, dump, fresh_database

PARTITIONS = {"commands": 6, "task": 6, "agent": 3, "tx": 6, "proof": 1}


def topics_for(admin: AdminClient, settings: Settings, events: int) -> tuple[Log, bool]:
    """The benchmark's topics, produced now unless a previous run left them complete."""
    names = {role: f"omc.bench.replay.{events}.{role}" for role in ROLES}
    dead = f"omc.bench.replay.{events}.deadletter"
    existing = admin.list_topics(timeout=30).topics
    if all(name in existing for name in (*names.values(), dead)):
        log = Log(settings, names, dead)
        if sum(log.watermarks().values()) >= events * 0.9:
            return log, False
        for future in admin.delete_topics([*names.values(), dead]).values():
            future.result(30)
        time.sleep(2)
    counts = {**{names[role]: PARTITIONS[role] for role in ROLES}, dead: 1}
    created = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1)
                                   for n, p in counts.items()])
    for future in created.values():
        future.result(30)
    log = Log(settings, names, dead)
    sent = [0]
    started = time.perf_counter()

    def sink(record) -> None:
        log.producer.send(log.topics_for(record), record)
        sent[0] += 1
        if sent[0] % 100_000 == 0:
            log.producer.flush(300)
            print(f"  produced {sent[0]} events ({time.perf_counter() - started:.0f}s)")

    History(f"bench-{uuid.uuid4().hex[:6]}", sink=sink).world(
        max(1, events * 10 // 119), agents_per_tenant=8)
    log.producer.flush(300)
    return log, True


def read_and_decode(settings: Settings, log: Log, ends: dict) -> float:
    consumer = Consumer(consumer_config(settings, f"omc.bench.{uuid.uuid4().hex}",
                                        **{"fetch.max.bytes": 64 * 1024 * 1024}))
    consumer.assign([KafkaPartition(t, p, 0) for (t, p) in ends])
    wanted, seen = sum(ends.values()), 0
    started = time.perf_counter()
    try:
        while seen < wanted:
            for message in consumer.consume(5000, timeout=1):
                if message.error() is None:
                    log.codec.decode(message.value())
                    seen += 1
    finally:
        consumer.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the topics for next time")
    args = parser.parse_args()
    settings = Settings.from_env()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    log, produced = topics_for(admin, settings, args.events)
    try:
        ends = {key: high for key, high in log.watermarks().items() if high}
        events = sum(ends.values())
        print(f"python {platform.python_version()}, {platform.machine()}; {events} events in "
              f"{len(ends)} partitions ({'produced now' if produced else 'reused'})")
        floor = read_and_decode(settings, log, ends)
        with fresh_database(settings) as database:
            started = time.perf_counter()
            applied = replay.rebuild(settings, database, ends, codec=log.codec,
                                     batch_size=args.batch)
            seconds = time.perf_counter() - started
            rows = sum(len(v) for k, v in dump(settings, database).items()
                       if k in {t.name for t in ROWS})
        print(f"baseline read+decode: {floor:6.1f}s  {events / floor:9.0f} events/s")
        print(f"replay into MySQL   : {seconds:6.1f}s  {events / seconds:9.0f} events/s "
              f"({applied} records applied, {rows} rows, batch {args.batch})")
        print(f"ratio: {floor / seconds:.0%} of read+decode; "
              f"target < 60 s for 1,000,000 events: "
              f"{'met' if seconds * 1_000_000 / events < 60 else 'NOT met'} "
              f"({seconds * 1_000_000 / events:.0f} s per million)")
    finally:
        if not args.keep:
            names = [*log.names, log.dead]
            for future in admin.delete_topics(names).values():
                future.result(30)


if __name__ == "__main__":
    main()
