"""The agent runtime's composition root: a faust-streaming app around `Runtime`.

    faust app   id (= consumer group) omc.runtime, at-least-once (faust's default, not
                exactly_once); one agent on omc.commands.v1, taken in batches (one key in
                order, keys at once); a 1 s timer for deadlines, approval expiry and
                anything left to resume
    views       followers of omc.agent.events.v1, omc.tx.events.v1, omc.task.events.v1,
                read to their end before the first command is handled
    outputs     produced through confluent-kafka (acks=all, idempotence), awaited before
                the handler returns, so faust commits an input offset only after its output

The faust agent is a few lines: decode, hand to `Runtime.on_command`, done. A message that
does not decode goes to omc.deadletter.v1 with its origin; the stream goes on. The
attestation key's address is logged at start: it is what anyone checks inferences against.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
from confluent_kafka import KafkaException, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from prometheus_client import start_http_server

from omc_chain.errors import ChainUnavailable
from omc_chain.reads import ChainReader
from omc_domain.task import Limits
from omc_events.codec import Codec, CodecError, RegistryUnavailable
from omc_kafka.acked import AsyncProducer
from omc_kafka.deadletter import DeadLetters
from omc_kafka.follow import TopicReader
from omc_kafka.producer import DeliveryFailed, EventProducer, producer_config
from omc_llm.attest import Attestor
from omc_llm.model import LanguageModel
from omc_llm.planner import LocalPlanner
from omc_obs.handling import bound_to
from omc_runtime import metrics
from omc_runtime.runtime import AGENT_EVENTS, COMMANDS, TASK_EVENTS, TX_EVENTS, Runtime
from omc_runtime.settings import RuntimeSettings
from omc_runtime.writer import Writer

log = logging.getLogger(__name__)

GROUP = "omc.runtime"
BATCH, BATCH_WAIT = 256, 0.02  # commands taken at once, and the most seconds to wait for them
INFRA_ATTEMPTS = 5
INFRASTRUCTURE = (DeliveryFailed, RegistryUnavailable, KafkaException, ChainUnavailable,
                  TimeoutError, ConnectionError)
SOURCE = "omc/agent-runtime"


def attestor_from(path: Path, *, make: bool) -> Attestor:
    """The inference-signing key from its secret file; made (mode 0600) when it is missing
    and `make` (the local stack's default path only: a configured path must exist)."""
    if make and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    return Attestor.from_file(path)


def model_from(settings: RuntimeSettings) -> LanguageModel:
    """The configured LLM adapter (the offline planner unless told otherwise), cached in
    Redis when OMC_RUNTIME_LLM_CACHE_TTL is set."""
    if settings.llm == "openai":
        from omc_llm.openai_adapter import OpenAIModel

        key = (settings.llm_api_key_file.read_text(encoding="utf-8").strip()
               if settings.llm_api_key_file else None)
        model: LanguageModel = OpenAIModel(
            base_url=settings.llm_base_url, api_key=key, provider_name=settings.llm_provider,
            prices=settings.llm_prices, timeout=settings.llm_timeout)
    else:
        model = LocalPlanner()
    if settings.llm_cache_ttl:
        from redis.asyncio import Redis

        from omc_llm.cache import CachedModel

        model = CachedModel(model, Redis.from_url(settings.base.redis_url),
                            settings.llm_cache_ttl)
    return model


class _Message:
    """A faust message seen through the confluent-kafka Message methods DeadLetters reads."""

    def __init__(self, message) -> None:
        self._m = message

    def topic(self): return self._m.topic
    def partition(self): return self._m.partition
    def offset(self): return self._m.offset
    def key(self): return self._m.key
    def value(self): return self._m.value
    def headers(self): return list(self._m.headers or [])
    def timestamp(self): return (1, int((self._m.timestamp or 0) * 1000))


def command_agent(codec: Codec, runtime: Runtime, dead_letters: DeadLetters,
                  ready: asyncio.Event) -> Callable[[Any], Awaitable[None]]:
    """The body of the faust agent on omc.commands.v1: waits for `ready` (the views are
    current), then takes the stream in batches; decodes each message and hands it to
    `runtime.on_command`. Messages of one key are handled in order, different keys at the
    same time; faust acknowledges a batch only after all of it was handled (its outputs
    acknowledged by Kafka). A message that does not decode is dead-lettered and the stream
    goes on."""

    async def on_commands(stream) -> None:
        await ready.wait()
        async for events in stream.take_events(BATCH, within=BATCH_WAIT):
            by_key: dict[bytes | None, list] = {}
            for event in events:
                by_key.setdefault(event.message.key, []).append(event)
            await asyncio.gather(*(in_order(same_key) for same_key in by_key.values()))

    async def in_order(events) -> None:
        for event in events:
            try:
                record = codec.decode(event.value)
            except CodecError as poison:
                await asyncio.to_thread(dead_letters.send, _Message(event.message), poison)
                continue
            await handle(record, event.message)

    async def handle(record, message) -> None:
        """Answer one command. Infrastructure errors are retried with backoff, then the
        process exits non-zero (its supervisor restarts it; the offset stays uncommitted).
        Any other error is a bug this message triggers: it is dead-lettered, the stream goes
        on."""
        with bound_to(record):  # its ids on the lines below
            for attempt in range(1, INFRA_ATTEMPTS + 1):
                try:
                    await runtime.on_command(record, message.partition)
                    return
                except INFRASTRUCTURE as error:
                    log.warning("command %s: %s (attempt %d of %d)", record.meta.event_id,
                                error, attempt, INFRA_ATTEMPTS)
                    await asyncio.sleep(min(2 ** attempt, 30))
                except Exception as error:
                    log.exception("command %s cannot be handled; dead-lettered",
                                  record.meta.event_id)
                    await asyncio.to_thread(dead_letters.send, _Message(message), error)
                    metrics.DEAD_LETTERS.inc()
                    return
            log.critical("giving up on the infrastructure; exiting for the supervisor to "
                         "restart")
        os._exit(70)

    return on_commands


def create_app(settings: RuntimeSettings, *, model: LanguageModel | None = None,
               attestor: Attestor | None = None,
               on_runtime: Callable[[Runtime], None] | None = None) -> faust.App:
    """The runtime as a faust app; `on_runtime` sees the Runtime once it is built."""
    base = settings.base
    app = faust.App(
        GROUP, broker=f"kafka://{base.kafka_bootstrap}", value_serializer="raw",
        key_serializer="raw", topic_allow_declare=False, topic_disable_leader=True,
        web_enabled=False, store="memory://", consumer_auto_offset_reset="earliest",
        datadir=str(base.stack.dir / "runtime" / "faust"),  # not the working directory
        producer_acks=-1, broker_commit_every=1, stream_wait_empty=False,
        broker_session_timeout=10.0, broker_heartbeat_interval=3.0)
    commands = app.topic(COMMANDS, key_type=bytes, value_type=bytes)
    codec = Codec(SchemaRegistryClient({"url": base.schema_registry_url}))
    producer = AsyncProducer(Producer(producer_config(base)), codec, SOURCE)
    dead_letters = DeadLetters(EventProducer(Producer(producer_config(base)), codec, SOURCE),
                               GROUP)

    def owns(partition: int) -> bool:
        assigned = app.consumer.assignment() if app.consumer else set()
        return any(tp.topic == COMMANDS and tp.partition == partition for tp in assigned)

    runtime = Runtime(
        writer=Writer(producer), model=model or model_from(settings),
        attestor=attestor or attestor_from(settings.attestor_key_file,
                                           make=settings.attestor_key_is_local),
        reader=ChainReader.from_url(base.chain_rpc_url),
        limits=Limits(wall_seconds=settings.wall_seconds,
                      approval_seconds=settings.approval_seconds),
        owns=owns)

    def waking(apply: Callable) -> Callable:
        return lambda record, partition: runtime.wake(apply(record, partition))

    def follower(topic: str, apply: Callable) -> TopicReader:
        return TopicReader(base.kafka_bootstrap, codec, topic, waking(apply), batch=500,
                           name="omc.runtime.follow", known=runtime.writer.wrote)

    followers = [follower(AGENT_EVENTS, runtime.agents.apply),
                 follower(TX_EVENTS, runtime.requests.apply),
                 follower(TASK_EVENTS, runtime.tasks.apply)]
    runtime.agent_follower = followers[0]
    ready = asyncio.Event()
    if on_runtime is not None:
        on_runtime(runtime)

    @app.task
    async def start_views() -> None:
        for follower in followers:
            asyncio.get_running_loop().create_task(follower.run())
        await asyncio.gather(*(f.wait_current(timeout=120) for f in followers))
        log.info("views current: %d agents, %d tasks, %d transaction requests; inferences "
                 "are signed by %s", len(runtime.agents.states), len(runtime.tasks.states),
                 len(runtime.requests.tasks), runtime.attestor.address)
        ready.set()
        runtime.active = True
        start_http_server(settings.metrics_port, addr=settings.metrics_host)

    app.agent(commands)(command_agent(codec, runtime, dead_letters, ready))

    @app.timer(interval=1.0)
    async def tick() -> None:
        if ready.is_set():
            runtime.wake_all()

    app.omc_runtime = runtime  # type: ignore[attr-defined]
    return app
