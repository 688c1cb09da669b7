"""Query latency under load: the gateway's read routes through uvicorn, against the raw reads
they are made of, each under the same number of concurrent clients, in one run.

    .venv/bin/python -m bench.query [--tasks 3000] [--connections 32] [--seconds 5]

    GET /v1/tasks/{id}                 MySQL: the task row, its transactions' hashes, as_of
    GET /v1/tasks?status=…&limit=20    MySQL: one keyset page of a tenant's tasks
    GET /v1/tasks/{id}/stream?from=beginning
                                       Redis: the live status (HGETALL), then the finished
                                       task's events (XRANGE) as Server-Sent Events; the
                                       stream ends at the terminal event
    baseline mysql                     SELECT * FROM tasks by primary key, through the same
                                       driver (mysql.connector, pure), one connection per client
    baseline redis                     HGETALL of the same status keys (redis.asyncio)

Needs the local stack. A fresh database holds the read model of a coherent history
(tests/integration/test_proj_mysql_support.History, folded by the replay's `_fold`) and an API
key; a fresh Redis prefix holds the Redis projection of the same history
(`omc_proj_redis.Projector.apply`); both are removed afterwards. The gateway runs in its own
process (uvicorn, uvloop, httptools, one worker; MySQL pool OMC_GATEWAY_MYSQL_POOL, default 8);
the load generator is this process: keep-alive HTTP/1.1 connections, each sending its next
request when the previous answer has arrived. Reported: requests/s, p50, p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import subprocess
import sys
import threading
import time
import uuid

import redis
import redis.asyncio
from confluent_kafka import Message

from bench.ingest import ROOT, Result, _free_port, _stop
from omc_config import Settings
from omc_gateway import apikeys
from omc_kafka.consumer import Delivery
from omc_proj_mysql import replay
from omc_proj_mysql.apply import At
from omc_proj_mysql.projector import Item
from omc_proj_mysql.store import Literals, write_pending
from omc_proj_redis.keys import Keys, glob_escape
from omc_proj_redis.projector import COMMANDS_TOPIC, EVENTS_TOPIC, Projector
from omc_store.mysql import connect
from tests.integration.test_proj_mysql_support import History, fresh_database, role_of

TENANT = "acme"
REDIS_ROLES = {"commands": COMMANDS_TOPIC, "task": EVENTS_TOPIC}


# -- the data ---------------------------------------------------------------------------------


def populate_mysql(settings: Settings, database: str, history: History) -> None:
    items = [Item(At(f"omc.{role_of(record)}", 0, n), record)
             for n, record in enumerate(history.records)]
    rows: dict = {table: {} for table in replay.ROWS if table.mode is replay.Mode.FOLD}
    pending, _, _ = replay._fold(items, rows, {})
    connection = connect(settings, database)
    try:
        cursor = connection.cursor()
        write_pending(cursor, Literals.of(cursor), pending)
        connection.commit()
    finally:
        connection.close()


def populate_redis(client: redis.Redis, keys: Keys, history: History) -> None:
    projector = Projector(client, None, None, None, keys=keys)  # type: ignore[arg-type]
    for role, topic in REDIS_ROLES.items():
        records = [record for record in history.records if role_of(record) == role]
        for start in range(0, len(records), 500):
            chunk = [Delivery(Message(topic=topic, partition=0, offset=start + i,
                                      timestamp=(1, 0)), record)
                     for i, record in enumerate(records[start:start + 500])]
            projector.apply(chunk, {f"{topic}/0": start + len(chunk)})


def finished_tasks(history: History) -> list[str]:
    """The tenant's tasks that reached a terminal event (their streams end)."""
    return sorted({r.meta.aggregate_id for r in history.records  # type: ignore[attr-defined]
                   if r.meta.tenant == TENANT and r.meta.event_type in (  # type: ignore[attr-defined]
                       "omc.task.TaskCompleted", "omc.task.TaskFailed",
                       "omc.task.TaskCancelled")})


# -- the gateway ------------------------------------------------------------------------------


def serve(port: int) -> None:
    import uvicorn

    os.environ["OMC_BENCH_TOPIC"] = "omc.commands.v1"
    uvicorn.run("bench.ingest:gateway_from_env", factory=True, host="127.0.0.1", port=port,
                loop="uvloop", http="httptools", log_config=None, access_log=False,
                lifespan="on")


def start(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    import httpx

    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.query", "--serve", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process, port
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the gateway did not start")


# -- load -------------------------------------------------------------------------------------


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status, length, chunked = int(head[9:12]), 0, False
    for line in head.split(b"\r\n"):
        lower = line.lower()
        if lower.startswith(b"content-length:"):
            length = int(line[15:])
        elif lower.startswith(b"transfer-encoding:") and b"chunked" in lower:
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return status


async def http_load(name: str, port: int, token: str, paths: list[str], *, seconds: float,
                    connections: int, warmup: float = 1.0) -> Result:
    requests = [(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Authorization: Bearer {token}\r\n\r\n").encode() for path in paths]

    async def client(stop_at: float, latencies: list[float], statuses: dict[int, int]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        chosen = random.Random(len(latencies))  # noqa: S311 - load, not secrets
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                writer.write(requests[chosen.randrange(len(requests))])
                status = await _read_answer(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    for phase, duration in (("warmup", warmup), ("measure", seconds)):
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        started = time.perf_counter()
        await asyncio.gather(*(client(started + duration, latencies, statuses)
                               for _ in range(connections)))
        if phase == "measure":
            return Result(name, len(latencies), time.perf_counter() - started, latencies,
                          statuses)
    raise AssertionError("unreachable")


def mysql_load(settings: Settings, database: str, task_ids: list[str], *, seconds: float,
               connections: int) -> Result:
    latencies: list[float] = []
    statuses = {200: 0}
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds + 0.5

    def client(n: int) -> None:
        connection = connect(settings, database)
        cursor = connection.cursor()
        chosen, mine = random.Random(n), []  # noqa: S311 - load, not secrets
        try:
            while (now := time.perf_counter()) < stop_at:
                cursor.execute("SELECT * FROM tasks WHERE tenant = %s AND task_id = %s",
                               (TENANT, task_ids[chosen.randrange(len(task_ids))]))
                cursor.fetchall()
                connection.rollback()
                if now > stop_at - seconds:  # the first half second warms up
                    mine.append(time.perf_counter() - now)
        finally:
            connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses[200] = len(latencies)
    return Result("raw SELECT by key", len(latencies), seconds, latencies, statuses)


async def redis_load(url: str, names: list[str], *, seconds: float,
                     connections: int) -> Result:
    client = redis.asyncio.Redis.from_url(url, max_connections=connections)
    latencies: list[float] = []

    async def one(n: int, stop_at: float, measure_from: float) -> None:
        chosen = random.Random(n)  # noqa: S311 - load, not secrets
        while (now := time.perf_counter()) < stop_at:
            await client.hgetall(names[chosen.randrange(len(names))])
            if now > measure_from:
                latencies.append(time.perf_counter() - now)

    try:
        began = time.perf_counter()
        await asyncio.gather(*(one(n, began + 0.5 + seconds, began + 0.5)
                               for n in range(connections)))
    finally:
        await client.aclose()
    return Result("raw HGETALL", len(latencies), seconds, latencies, {200: len(latencies)})


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=3000, help="tasks in the history")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per case")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    settings = Settings.from_env()
    history = History(f"q{uuid.uuid4().hex[:6]}").world(args.tasks, agents_per_tenant=4)
    prefix = f"omc:bench:{uuid.uuid4().hex[:12]}"
    keys = Keys(prefix)
    client = redis.Redis.from_url(settings.redis_url)
    options = {"seconds": args.seconds, "connections": args.connections}
    process = None
    with fresh_database(settings) as database:
        try:
            populate_mysql(settings, database, history)
            populate_redis(client, keys, history)
            env = {**os.environ, "OMC_MYSQL_DATABASE": database,
                   "OMC_PROJ_REDIS_PREFIX": prefix, "OMC_GATEWAY_RATE_LIMIT": "1000000000",
                   "PYTHONPATH": str(ROOT)}
            apikeys.migrate(Settings.from_env(env))
            connection = connect(settings, database)
            token, _ = apikeys.create_key(connection, TENANT, ["queries:read"])
            connection.close()
            task_ids = sorted({r.meta.aggregate_id for r in history.records  # type: ignore[attr-defined]
                               if r.meta.tenant == TENANT and r.meta.aggregate_type == "task"})  # type: ignore[attr-defined]
            finished = finished_tasks(history)
            results = [mysql_load(settings, database, task_ids, **options),
                       asyncio.run(redis_load(settings.redis_url,
                                              [keys.status(t) for t in finished], **options))]
            process, port = start(env)
            cases = {
                "GET /v1/tasks/{id}": [f"/v1/tasks/{t}" for t in task_ids],
                "GET /v1/tasks?status=…&limit=20": [
                    f"/v1/tasks?status={s}&limit=20"
                    for s in ("completed", "failed", "cancelled", "awaiting_approval")] +
                    ["/v1/tasks?limit=20"],
                "GET /v1/tasks/{id}/stream (Redis)": [
                    f"/v1/tasks/{t}/stream?from=beginning" for t in finished],
            }
            for name, paths in cases.items():
                results.append(asyncio.run(http_load(name, port, token, paths, **options)))
        finally:
            if process is not None:
                _stop(process)
            doomed = list(client.scan_iter(match=f"{glob_escape(prefix)}:*", count=1000))
            for start_at in range(0, len(doomed), 1000):
                client.delete(*doomed[start_at:start_at + 1000])
            client.close()
    print(f"query latency, {args.connections} concurrent clients, {args.seconds:g} s each, "
          f"{len(task_ids)} tasks of tenant {TENANT} ({len(history.records)} events), "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs")
    for result in results:
        print(f"  {result.name:<36} {result.rate:8.0f} req/s   p50 {result.quantile(0.5):7.2f}"
              f" ms   p99 {result.quantile(0.99):7.2f} ms   statuses "
              f"{dict(sorted(result.statuses.items()))}")


if __name__ == "__main__":
    main()
