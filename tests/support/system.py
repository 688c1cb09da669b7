"""Helpers for tests of the running system: free ports, waiting for projections, API keys
made with the real `omc keys create`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from omc_sdk import NotFound

T = TypeVar("T")
OMC = Path(sys.executable).with_name("omc")
ALL_SCOPES = "commands:write,queries:read,audit:read,approver,admin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def eventually(get: Callable[[], T], timeout: float = 60.0) -> T:
    """`get()` once it stops raising NotFound (a projection catching up), or its last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get()
        except NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def create_key(tenant: str, scopes: str, name: str = "e2e test") -> str:
    """A new API key for `tenant`, printed once by `omc keys create`."""
    done = subprocess.run([str(OMC), "keys", "create", "--tenant", tenant, "--scopes", scopes,
                           "--name", name], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def read_record(settings, topic: str, partition: int, offset: int):
    """The record stored at (topic, partition, offset), decoded from the log itself."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from omc_events.codec import Codec

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": "omc.test.read-record", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                assert message.offset() == offset
                codec = Codec(SchemaRegistryClient({"url": settings.schema_registry_url}))
                return codec.decode(message.value())
        raise AssertionError(f"nothing read at {topic}/{partition}@{offset}")
    finally:
        consumer.close()
