"""The Redis projection against raw Redis, on the local stack's Redis, in one run.

    .venv/bin/python -m bench.query_redis [--tasks 1000] [--batch 500] [--rounds 3]

    apply        Projector.apply on batches of decoded events (WATCH, status reads, the
                 status machine, JSON items, one MULTI/EXEC with the offsets) against a
                 naive baseline: the same items computed the same way, one HSET + XADD per
                 event in one MULTI/EXEC per batch (no WATCH, no reads)
    task_status  queries.task_status against a bare HGETALL of the same key
    read_events  queries.read_events (100 events, no wait) against a bare XRANGE of them

Kafka is not involved: the batches are built as consumer messages in memory. Keys live under
a fresh prefix, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import platform
import time
import uuid

import redis
import redis.asyncio
from confluent_kafka import Message

from omc_config import Settings
from omc_events.avro import Schemas
from omc_events.chain import seal
from omc_events.envelope import ChainHead
from omc_kafka.consumer import Delivery
from omc_proj_redis import queries
from omc_proj_redis.keys import Keys, glob_escape
from omc_proj_redis.projector import Projector
from omc_proj_redis.view import encode_item, on_event, task_event
from tests.support.samples import sample

LIFE = ("omc.task.TaskSubmitted", "omc.task.InferenceRequested",
        "omc.task.InferenceCompleted", "omc.task.ActionProposed", "omc.task.PolicyEvaluated")
TOPIC = "omc.task.events.v1"


def deliveries(tasks: int, events_per_task: int) -> list[Delivery]:
    schemas, found, offset = Schemas(), [], 0
    for _ in range(tasks):
        task, head = str(uuid.uuid4()), ChainHead()
        for name in LIFE[:events_per_task]:
            record = sample(schemas.set, name, aggregate_id=task, causation=task)
            record = dataclasses.replace(record, task_id=task, meta=dataclasses.replace(
                record.meta, tenant="acme"))
            record, head = seal(schemas, record, head)
            found.append(Delivery(Message(topic=TOPIC, partition=0, offset=offset,
                                          timestamp=(1, 0)), record))
            offset += 1
    return found


def clear(client: redis.Redis, keys: Keys) -> None:
    doomed = list(client.scan_iter(match=f"{glob_escape(keys.prefix)}:*", count=1000))
    for start in range(0, len(doomed), 1000):
        client.delete(*doomed[start:start + 1000])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()

    settings = Settings.from_env()
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(f"omc:bench:{uuid.uuid4().hex[:12]}")
    batch = deliveries(args.tasks, len(LIFE))
    batches = [batch[i:i + args.batch] for i in range(0, len(batch), args.batch)]
    projector = Projector(client, None, None, None, keys=keys)  # type: ignore[arg-type]

    def ours() -> float:
        clear(client, keys)
        started = time.perf_counter()
        for chunk in batches:
            end = chunk[-1].message.offset() + 1
            projector.apply(chunk, {f"{TOPIC}/0": end})
        return len(batch) / (time.perf_counter() - started)

    def raw() -> float:
        clear(client, keys)
        started = time.perf_counter()
        for chunk in batches:
            writes = []
            for d in chunk:  # what the projection writes, computed outside Redis
                outcome = on_event(None, d.record, TOPIC, 0, d.message.offset())
                writes.append((d.record.meta.aggregate_id, outcome.status, outcome.sequence,
                               {"type": d.record.meta.event_type,
                                "event": encode_item(task_event(d.record, TOPIC, 0,
                                                                d.message.offset()))}))
            with client.pipeline(transaction=True) as pipe:
                for task_id, status, sequence, entry in writes:
                    pipe.hset(keys.status(task_id), mapping=status)
                    pipe.xadd(keys.events(task_id), entry, id=f"{sequence}-0", maxlen=1000,
                              approximate=False)
                pipe.hset(keys.offsets, f"{TOPIC}/0", chunk[-1].message.offset() + 1)
                pipe.execute()
        return len(batch) / (time.perf_counter() - started)

    print(f"python {platform.python_version()}, redis-py {redis.__version__}, "
          f"{platform.machine()}; {len(batch)} events of {args.tasks} tasks in batches of "
          f"{args.batch}; best of {args.rounds} alternating rounds")
    best = {"raw": 0.0, "ours": 0.0}
    try:
        for _ in range(args.rounds):
            best["raw"] = max(best["raw"], raw())
            best["ours"] = max(best["ours"], ours())
        print(f"{'apply: naive MULTI, HSET + XADD per event':<44} {best['raw']:>10,.0f} events/s")
        print(f"{'apply: Projector.apply':<44} {best['ours']:>10,.0f} events/s  "
              f"({best['ours'] / best['raw']:.0%} of naive)")

        task_ids = sorted({d.record.meta.aggregate_id for d in batch})[:args.lookups]

        def rate(work) -> float:
            started = time.perf_counter()
            for task_id in task_ids:
                work(task_id)
            return len(task_ids) / (time.perf_counter() - started)

        bare_status = rate(lambda t: client.hgetall(keys.status(t)))
        our_status = rate(lambda t: queries.task_status(client, "acme", t,
                                                        prefix=keys.prefix))
        print(f"{'task_status: bare HGETALL':<44} {bare_status:>10,.0f} lookups/s")
        print(f"{'task_status: queries.task_status':<44} {our_status:>10,.0f} lookups/s  "
              f"({our_status / bare_status:.0%} of bare)")

        async def reads() -> tuple[float, float]:
            aclient = redis.asyncio.Redis.from_url(settings.redis_url)
            try:
                started = time.perf_counter()
                for task_id in task_ids:
                    await aclient.xrange(keys.events(task_id), count=100)
                bare = len(task_ids) / (time.perf_counter() - started)
                started = time.perf_counter()
                for task_id in task_ids:
                    await queries.read_events(aclient, "acme", task_id, after=0, block_ms=0,
                                              prefix=keys.prefix)
                return bare, len(task_ids) / (time.perf_counter() - started)
            finally:
                await aclient.aclose()

        bare_read, our_read = asyncio.run(reads())
        print(f"{'read_events: bare XRANGE (async)':<44} {bare_read:>10,.0f} reads/s")
        print(f"{'read_events: queries.read_events':<44} {our_read:>10,.0f} reads/s  "
              f"({our_read / bare_read:.0%} of bare; tenant check + JSON decode)")
    finally:
        clear(client, keys)
        client.close()


if __name__ == "__main__":
    main()
