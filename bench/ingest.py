"""Command ingest through uvicorn: POST /v1/tasks on the gateway (auth, rate limit in Redis,
validation, sealing, Kafka acks=all before 202) against a bare Starlette endpoint that only
parses the JSON body and answers 202, both served the same way in the same run.

    .venv/bin/python -m bench.ingest [--seconds 5] [--rounds 3] [--connections 32]
                                     [--max-requests 100000] [--workers 1]

Needs the local stack (`omc stack up`). The gateway writes to a fresh topic declared like
omc.commands.v1 (so the shared log stays clean) and reads its API key from a fresh database;
both are removed afterwards. Each server is its own process (uvicorn, uvloop, httptools, one
worker unless --workers), both up for the whole run and measured in alternating rounds (the
machine may be shared: each round loads them alike). The load generator is this process:
keep-alive HTTP/1.1 connections on loopback, each sending its next request when the previous
answer arrived, for a bounded time and count. Reported per round: requests/s, p50 and p99
latency; then the gateway's share of the bare requests/s (median of the rounds' ratios, and
best round against best round). Target: the gateway at >= 50% of the bare requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BODY = json.dumps({"agent_id": "6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b",
                   "instruction": "Send 0.01 ETH to the treasury when the price is right",
                   "chain_id": 31337, "max_value_wei": "10000000000000000"}).encode()


# -- the servers ------------------------------------------------------------------------------


def bare_app():
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def accept(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        return JSONResponse({"command_id": str(uuid.uuid4()), "status": "accepted",
                             "agent_id": body["agent_id"]}, status_code=202)

    return Starlette(routes=[Route("/v1/tasks", accept, methods=["POST"])])


def gateway_app(topic: str):
    from omc_events.catalogue import Catalogue
    from omc_gateway.observe import CONTEXT
    from omc_gateway.settings import GatewaySettings
    from omc_gateway.wiring import build
    from omc_obs.logging import configure

    configure("gateway", context=CONTEXT.get)
    catalogue = Catalogue.load()
    topics = dict(catalogue.topics)
    topics[topic] = dataclasses.replace(catalogue["omc.commands.v1"], name=topic)
    return build(GatewaySettings.from_env(), commands_topic=topic,
                 catalogue=Catalogue(topics))


def gateway_from_env():
    return gateway_app(os.environ["OMC_BENCH_TOPIC"])


def serve(kind: str, port: int, topic: str, workers: int) -> None:
    import uvicorn

    os.environ["OMC_BENCH_TOPIC"] = topic
    factory = "bench.ingest:bare_app" if kind == "bare" else "bench.ingest:gateway_from_env"
    uvicorn.run(factory, factory=True, host="127.0.0.1", port=port, loop="uvloop",
                http="httptools", log_config=None, access_log=False, lifespan="on",
                workers=workers)


# -- the load generator -----------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        return (f"{self.name:<8} {self.rate:9.0f} req/s   p50 {self.quantile(0.5):7.2f} ms   "
                f"p99 {self.quantile(0.99):7.2f} ms   {self.requests} requests, statuses "
                f"{dict(sorted(self.statuses.items()))}")


def request_bytes(port: int, token: str | None) -> bytes:
    head = ["POST /v1/tasks HTTP/1.1", f"Host: 127.0.0.1:{port}",
            "Content-Type: application/json", f"Content-Length: {len(BODY)}"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + BODY


async def _connection(port: int, payload: bytes, stop_at: float, budget: list[int],
                      latencies: list[float], statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def load(name: str, port: int, token: str | None, *, seconds: float, connections: int,
               max_requests: int, warmup: float) -> Result:
    payload = request_bytes(port, token)
    for phase, duration, budget in (("warmup", warmup, max_requests),
                                    ("measure", seconds, max_requests)):
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        started = time.perf_counter()
        remaining = [budget]
        await asyncio.gather(*(_connection(port, payload, started + duration, remaining,
                                           latencies, statuses)
                               for _ in range(connections)))
        elapsed = time.perf_counter() - started
        if phase == "measure":
            return Result(name, len(latencies), elapsed, latencies, statuses)
    raise AssertionError("unreachable")


# -- setup ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(kind: str, topic: str, env: dict[str, str],
           workers: int) -> tuple[subprocess.Popen, int]:
    import httpx

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.ingest", "--serve", kind, "--port", str(port),
         "--topic", topic, "--workers", str(workers)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/v1/tasks", content=b"{}", timeout=1)
            return process, port
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the {kind} server did not start")


def _count(settings, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "omc.bench"})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in partitions)
    finally:
        probe.close()


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="measured time per server and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds, each measuring bare then gateway")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--max-requests", type=int, default=100_000,
                        help="most requests per phase and server")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes of each server")
    parser.add_argument("--serve", choices=("bare", "gateway"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.topic, args.workers)
        return

    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    from omc_config import Settings
    from omc_events.avro import Schemas
    from omc_events.catalogue import Catalogue
    from omc_gateway import apikeys
    from omc_store.mysql import connect

    settings = Settings.from_env()
    topic = f"omc.bench.commands.{uuid.uuid4().hex[:8]}"
    database = f"{settings.mysql.database}_test_bench_{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result(timeout=30)
    registry = SchemaRegistryClient({"url": settings.schema_registry_url})
    template, schemas = Catalogue.load()["omc.commands.v1"], Schemas()
    for record in template.records:
        registry.register_schema(dataclasses.replace(template, name=topic).subject(record),
                                 Schema(schemas.set.standalone_json(record), "AVRO"))
    root = connect(settings, database="")
    root.cursor().execute(f"CREATE DATABASE `{database}`")
    env = {**os.environ, "OMC_MYSQL_DATABASE": database, "OMC_GATEWAY_RATE_LIMIT": "1000000000",
           "PYTHONPATH": str(ROOT)}
    processes = []
    try:
        apikeys.migrate(Settings.from_env(env))
        connection = connect(settings, database=database)
        token, _ = apikeys.create_key(connection, "bench", ["commands:write"])
        connection.close()
        options = {"seconds": args.seconds, "connections": args.connections,
                   "max_requests": args.max_requests, "warmup": args.warmup}
        ports = {}
        for kind in ("bare", "gateway"):
            process, ports[kind] = _start(kind, topic, env, args.workers)
            processes.append(process)
        rounds: list[dict[str, Result]] = []
        for _ in range(args.rounds):  # alternated: a machine shared with other work loads
            rounds.append({kind: asyncio.run(load(  # both alike, round by round
                kind, port, token if kind == "gateway" else None, **options))
                for kind, port in ports.items()})
        print(f"command ingest, {args.connections} keep-alive connections, "
              f"{args.workers} worker(s) per server, {args.rounds} alternating rounds of "
              f"{args.seconds:g} s each, {platform.python_implementation()} "
              f"{platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, "
              f"load average {os.getloadavg()[0]:.1f}")
        for n, found in enumerate(rounds, 1):
            bare, gateway = found["bare"], found["gateway"]
            print(f"  round {n}: gateway / bare {gateway.rate / bare.rate:.0%}")
            for result in found.values():
                print("    " + result.line())
        ratios = sorted(r["gateway"].rate / r["bare"].rate for r in rounds)
        gateway = max((r["gateway"] for r in rounds), key=lambda r: r.rate)
        bare = max((r["bare"] for r in rounds), key=lambda r: r.rate)
        print(f"  gateway / bare: median of rounds {statistics.median(ratios):.0%} of the "
              f"requests/s (target >= 50%); best rounds {gateway.rate:.0f} / {bare.rate:.0f} "
              f"req/s = {gateway.rate / bare.rate:.0%}; best-round p99 "
              f"{gateway.quantile(0.99):.1f} ms vs {bare.quantile(0.99):.1f} ms")
        print(f"  commands acknowledged on the log: {_count(settings, topic)} "
              f"(warm-up included)")
    finally:
        for process in processes:
            if process.poll() is None:
                _stop(process)
        root.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        root.close()
        admin.delete_topics([topic])[topic].result(timeout=30)


if __name__ == "__main__":
    main()
