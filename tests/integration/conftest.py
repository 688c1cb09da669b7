"""Fixtures over the real local stack (Kafka, MariaDB, Redis, anvil).

The session's first integration test brings the stack up (`omc stack up`, a no-op when it
runs). Each test gets fresh resources where isolation matters: a topic, a database, a Redis
key prefix, a funded chain account of its own. No Docker engine runs on the project's
machines, so testcontainers is not used; with Docker, `docker compose up` gives the same
components on the same ports and environment names.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import mysql.connector
import pytest
import redis
from confluent_kafka.admin import AdminClient, NewTopic
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from omc_config import Settings
from omc_stack import Stack
from tests.support.txmanager import PrivateAnvil, TxLog, private_anvil


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Stack:
    """The running local stack; started here if it is not up yet."""
    stack = Stack(settings, report=lambda line: print(f"[stack] {line}"))
    stack.up()
    return stack


@pytest.fixture(scope="session")
def kafka_admin(stack: Stack, settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap})


@pytest.fixture
def fresh_topic(kafka_admin: AdminClient) -> Iterator[Callable[..., str]]:
    """Create topics with unique names for this test; they are deleted afterwards."""
    created: list[str] = []

    def create(partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = f"omc.test.{uuid.uuid4().hex[:12]}"
        futures = kafka_admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})]
        )
        futures[name].result(timeout=30)
        created.append(name)
        return name

    yield create
    if created:
        for future in kafka_admin.delete_topics(created).values():
            future.result(timeout=30)


@pytest.fixture
def mysql_connect(stack: Stack, settings: Settings) -> Iterator[Callable[[], object]]:
    """Connections, as the project's user, to a database made for this test and then dropped."""
    database = f"{settings.mysql.database}_test_{uuid.uuid4().hex[:12]}"
    options = {
        "host": settings.mysql.host, "port": settings.mysql.port, "user": settings.mysql.user,
        "password": settings.mysql.password, "use_pure": True, "ssl_disabled": True,
    }
    admin = mysql.connector.connect(**options)
    admin.cursor().execute(f"CREATE DATABASE `{database}`")
    opened = []

    def connect():
        connection = mysql.connector.connect(**options, database=database)
        opened.append(connection)
        return connection

    yield connect
    for connection in opened:
        connection.close()
    admin.cursor().execute(f"DROP DATABASE `{database}`")
    admin.close()


@pytest.fixture
def redis_keys(stack: Stack, settings: Settings) -> Iterator[tuple[redis.Redis, str]]:
    """A Redis client and a key prefix of this test's own; its keys are deleted afterwards."""
    client = redis.Redis.from_url(settings.redis_url)
    prefix = f"omc:test:{uuid.uuid4().hex[:12]}:"
    yield client, prefix
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def web3(stack: Stack, settings: Settings) -> Web3:
    return Web3(Web3.HTTPProvider(settings.chain_rpc_url, request_kwargs={"timeout": 10}))


@pytest.fixture
def funded_account(web3: Web3) -> LocalAccount:
    """A new random account holding 10 ether, made with anvil's cheat code (no dev key used)."""
    account = Account.create()
    web3.provider.make_request("anvil_setBalance", [account.address, hex(10 * 10**18)])
    return account


@pytest.fixture
def txlog(stack: Stack, settings: Settings, fresh_topic) -> Iterator[TxLog]:
    """The tx manager's topics of one test (requests, events, dead letters, a group)."""
    log = TxLog(settings, fresh_topic)
    yield log
    log.close()


@pytest.fixture
def anvil(stack: Stack, settings: Settings) -> Iterator[PrivateAnvil]:
    """An anvil of the test's own (automine off), for what must not touch the shared chain."""
    yield from private_anvil(settings)
