"""MySQL projector throughput: events/s from Kafka into the read model, against raw batched
`executemany` of the same rows into MySQL, measured in the same run.

    .venv/bin/python -m bench.projector [--events 50000] [--batch 2000]

A coherent history (tests/integration/test_proj_mysql_support.History: agents, tasks of every
outcome, budgets, transactions, anchors) of about N events is produced once into fresh topics.
The projector (in-process, one MySQL transaction per batch, offsets stored with the rows) then
applies all of it into a fresh database: consume, decode, fold, upsert. The baseline inserts the
rows the projector ended with (every table) into another fresh database with the driver's
`executemany`, 1,000 rows per statement, one commit per statement. Target: the projector at
least 50% of the baseline, in events/s.
"""

from __future__ import annotations

import argparse
import platform
import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from omc_config import Settings
from omc_proj_mysql.tables import ROWS
from omc_store.mysql import connect
from tests.integration.test_proj_mysql_support import (
    ROLES,
    History,
    Log,
    dump,
    fresh_database,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    settings = Settings.from_env()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    made: list[str] = []

    def fresh_topic(partitions: int = 1) -> str:
        name = f"omc.bench.projector.{uuid.uuid4().hex[:12]}"
        admin.create_topics([NewTopic(name, num_partitions=partitions,
                                      replication_factor=1)])[name].result(30)
        made.append(name)
        return name

    try:
        log = Log.fresh(settings, fresh_topic, partitions={"commands": 6, "task": 6,
                                                          "agent": 3, "tx": 6})
        started = time.perf_counter()
        sent = [0]

        def sink(record) -> None:
            log.producer.send(log.topics_for(record), record)
            sent[0] += 1

        history = History(f"bench-{uuid.uuid4().hex[:6]}", sink=sink)
        history.world(max(1, args.events // 12), agents_per_tenant=8)
        log.producer.flush(300)
        events = sum(log.watermarks().values())
        print(f"python {platform.python_version()}, {platform.machine()}; produced {events} "
              f"events in {time.perf_counter() - started:.1f}s into {len(ROLES)} fresh topics")

        with fresh_database(settings) as database:
            projector = log.projector(database, batch_size=args.batch)
            started = time.perf_counter()
            try:
                log.project(projector, database, timeout=3600)
            finally:
                projector.close()
            projected = time.perf_counter() - started
            rows = dump(settings, database)
        row_count = sum(len(rows[table.name]) for table in ROWS)

        with fresh_database(settings) as database:
            connection = connect(settings, database)
            cursor = connection.cursor()
            started = time.perf_counter()
            for table in ROWS:
                columns = ", ".join(f"`{c}`" for c in table.columns)
                marks = ", ".join(["%s"] * len(table.columns))
                sql = f"INSERT INTO `{table.name}` ({columns}) VALUES ({marks})"  # noqa: S608
                values = rows[table.name]
                for start in range(0, len(values), 1000):
                    cursor.executemany(sql, values[start:start + 1000])
                    connection.commit()
            baseline = time.perf_counter() - started
            connection.close()

        ours, raw = events / projected, events / baseline
        print(f"rows written: {row_count} in {len(ROWS)} tables "
              f"({row_count / events:.2f} per event)")
        print(f"baseline executemany: {baseline:6.2f}s  {raw:9.0f} events/s "
              f"({row_count / baseline:.0f} rows/s)")
        print(f"projector           : {projected:6.2f}s  {ours:9.0f} events/s "
              f"(batch {args.batch})")
        print(f"ratio: {ours / raw:.0%} of raw executemany (target >= 50%)")
    finally:
        if made:
            for future in admin.delete_topics(made).values():
                future.result(30)


if __name__ == "__main__":
    main()
