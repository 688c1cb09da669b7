"""The composition root: the real adapters from settings, and the app over them.

Kafka: an `EventProducer` (acks=all, idempotence) with the registry-backed codec, whose
delivery reports the command bus serves on the event loop. MySQL: a lazy pool shared by key
lookups and queries. Redis: one async client for rate limits and idempotency keys (short
timeouts), one for live streams (no read timeout, since XREAD blocks), one sync client for
`task_status`. The projections' query modules are imported here, and only here.
"""

from __future__ import annotations

import importlib

import redis
import redis.asyncio
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from starlette.applications import Starlette

from omc_events.avro import Schemas
from omc_events.catalogue import Catalogue
from omc_events.codec import Codec
from omc_gateway.apikeys import CachedKeyStore, find_key
from omc_gateway.app import create_app
from omc_gateway.commands import CommandFactory
from omc_gateway.mysqlpool import MySQLPool
from omc_gateway.publisher import COMMANDS_TOPIC, KafkaCommandBus
from omc_gateway.readmodel import ProjectionReadModel
from omc_gateway.redisports import RedisIdempotency, RedisRateLimiter
from omc_gateway.routes_proofs import ProofIndex
from omc_gateway.settings import GatewaySettings
from omc_kafka.acked import AsyncProducer
from omc_kafka.producer import producer_config
from omc_store.mysql import options

SOURCE = "omc/gateway"


def build(settings: GatewaySettings, *, commands_topic: str = COMMANDS_TOPIC,
          catalogue: Catalogue | None = None) -> Starlette:
    """The app over the real adapters. `commands_topic` and `catalogue` let a benchmark or
    a test write commands to a topic of its own (declared in `catalogue`)."""
    base = settings.base
    schemas = Schemas()
    timeout_ms = int(settings.kafka_timeout * 1000)

    def make_producer() -> AsyncProducer:
        producer = Producer(producer_config(base, **{
            "message.timeout.ms": timeout_ms, "request.timeout.ms": min(timeout_ms, 30000),
            "client.id": "omc-gateway",
            # small messages, and CPU is what limits the gateway: lz4 costs more than it saves
            "compression.type": "none"}))
        registry = SchemaRegistryClient({"url": base.schema_registry_url})
        return AsyncProducer(producer, Codec(registry, schemas=schemas, catalogue=catalogue),
                             SOURCE)

    def connect():
        import mysql.connector

        return mysql.connector.connect(**options(base), connection_timeout=5)

    pool = MySQLPool(connect, size=settings.mysql_pool)
    fast = redis.asyncio.Redis.from_url(base.redis_url, socket_timeout=2,
                                        socket_connect_timeout=2)
    read_model = ProjectionReadModel(
        mysql_queries=importlib.import_module("omc_proj_mysql.queries"),
        redis_queries=importlib.import_module("omc_proj_redis.queries"),
        pool=pool,
        redis_client=redis.Redis.from_url(base.redis_url, socket_timeout=2,
                                          socket_connect_timeout=2),
        live_client=redis.asyncio.Redis.from_url(base.redis_url, socket_connect_timeout=2),
        redis_prefix=settings.redis_prefix,
    )
    return create_app(
        settings,
        commands=KafkaCommandBus(make_producer, timeout=settings.kafka_timeout,
                                 topic=commands_topic),
        read_model=read_model,
        keys=CachedKeyStore(lambda key_id: pool.run(lambda c: find_key(c, key_id)),
                            ttl=settings.key_cache),
        limiter=RedisRateLimiter(fast, limit=settings.rate_limit, window=settings.rate_window),
        idempotency=RedisIdempotency(fast, ttl=settings.idempotency_ttl,
                                     pending_ttl=settings.kafka_timeout + 30),
        factory=CommandFactory(schemas),
        proofs=ProofIndex(importlib.import_module("omc_proj_proofs.queries"), pool),
    )
