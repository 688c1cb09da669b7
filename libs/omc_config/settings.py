"""Settings: one immutable object read from the environment (12-factor).

Every value has a default that points at the local stack (`omc stack up`), so a fresh
checkout needs no configuration; production sets the `OMC_*` variables instead. Reading
validates everything at once and raises `ConfigError` naming each bad variable, so a
misconfigured process fails at start rather than on first use.

Local-stack ports avoid the standard ones (9092, 3306, 6379, 8545, 8081), so a machine
that already runs Kafka, MySQL or Redis is not disturbed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from omc_errors import ConfigError

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StackSettings:
    """Where the local stack keeps its files and which loopback ports it listens on."""

    dir: Path
    kafka_port: int
    kafka_controller_port: int
    mysql_port: int
    redis_port: int
    anvil_port: int
    registry_port: int
    gateway_port: int
    proj_mysql_metrics_port: int
    proj_redis_metrics_port: int
    runtime_metrics_port: int
    txmanager_metrics_port: int
    watcher_metrics_port: int
    notary_metrics_port: int
    proj_proofs_metrics_port: int
    chain_id: int
    block_time: float
    kafka_heap: str
    start_timeout: float


@dataclass(frozen=True)
class MySQLSettings:
    """How services reach MySQL (MariaDB locally). The password never appears in reprs."""

    host: str
    port: int
    user: str
    password: str
    database: str

    def __repr__(self) -> str:
        return (
            f"MySQLSettings(host={self.host!r}, port={self.port}, user={self.user!r}, "
            f"password='***', database={self.database!r})"
        )


@dataclass(frozen=True)
class Settings:
    """Everything a process of the project is configured with."""

    stack: StackSettings
    kafka_bootstrap: str
    kafka_replication_factor: int
    mysql: MySQLSettings
    redis_url: str
    chain_rpc_url: str
    chain_id: int
    schema_registry_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; raise `ConfigError` listing every bad variable."""
        return _Reader(os.environ if env is None else env).settings()


class _Reader:
    """Collects every problem instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def settings(self) -> Settings:
        stack = StackSettings(
            dir=self.path("OMC_STACK_DIR", REPO_ROOT / ".stack"),
            kafka_port=self.port("OMC_KAFKA_PORT", 19092),
            kafka_controller_port=self.port("OMC_KAFKA_CONTROLLER_PORT", 19093),
            mysql_port=self.port("OMC_MYSQL_PORT", 13306),
            redis_port=self.port("OMC_REDIS_PORT", 16379),
            anvil_port=self.port("OMC_ANVIL_PORT", 18545),
            registry_port=self.port("OMC_REGISTRY_PORT", 18081),
            gateway_port=self.port("OMC_GATEWAY_PORT", 18080),
            proj_mysql_metrics_port=self.port("OMC_PROJ_MYSQL_METRICS_PORT", 18091),
            proj_redis_metrics_port=self.port("OMC_PROJ_REDIS_METRICS_PORT", 18092),
            runtime_metrics_port=self.port("OMC_RUNTIME_METRICS_PORT", 18093),
            txmanager_metrics_port=self.port("OMC_TXMANAGER_METRICS_PORT", 18094),
            watcher_metrics_port=self.port("OMC_WATCHER_METRICS_PORT", 18095),
            notary_metrics_port=self.port("OMC_NOTARY_METRICS_PORT", 18096),
            proj_proofs_metrics_port=self.port("OMC_PROJ_PROOFS_METRICS_PORT", 18097),
            chain_id=self.number("OMC_CHAIN_ID", 31337, int, minimum=1),
            block_time=self.number("OMC_BLOCK_TIME", 0.0, float, minimum=0),
            kafka_heap=self.heap("OMC_KAFKA_HEAP", "768m"),
            start_timeout=self.number("OMC_STACK_START_TIMEOUT", 120.0, float, minimum=1),
        )
        self.distinct_ports(stack)
        settings = Settings(
            stack=stack,
            kafka_bootstrap=self.text("OMC_KAFKA_BOOTSTRAP", f"127.0.0.1:{stack.kafka_port}"),
            kafka_replication_factor=self.number("OMC_KAFKA_REPLICATION_FACTOR", 1, int,
                                                 minimum=1),
            mysql=MySQLSettings(
                host=self.text("OMC_MYSQL_HOST", "127.0.0.1"),
                port=stack.mysql_port,
                user=self.identifier("OMC_MYSQL_USER", "omc"),
                password=self.env.get("OMC_MYSQL_PASSWORD", "omc-local-only"),
                database=self.identifier("OMC_MYSQL_DATABASE", "omc"),
            ),
            redis_url=self.url("OMC_REDIS_URL", f"redis://127.0.0.1:{stack.redis_port}/0",
                               ("redis", "rediss", "unix")),
            chain_rpc_url=self.url("OMC_CHAIN_RPC_URL", f"http://127.0.0.1:{stack.anvil_port}",
                                   ("http", "https", "ws", "wss")),
            chain_id=stack.chain_id,
            schema_registry_url=self.url("OMC_SCHEMA_REGISTRY_URL",
                                         f"http://127.0.0.1:{stack.registry_port}",
                                         ("http", "https")),
        )
        if self.problems:
            raise ConfigError(self.problems)
        return settings

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def parsed(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError:
            self.problems.append(f"{name}={value!r} is not {expected}")
            return default

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def path(self, name: str, default: Path) -> Path:
        return Path(self.raw(name) or default).expanduser().resolve()

    def port(self, name: str, default: int) -> int:
        def parse(value: str) -> int:
            port = int(value)
            if not 1 <= port <= 65535:
                raise ValueError(value)
            return port

        return self.parsed(name, default, parse, "a port number (1-65535)")

    def number(self, name: str, default: T, kind: Callable[[str], T], *, minimum: float) -> T:
        def parse(value: str) -> T:
            number = kind(value)
            if number < minimum:  # type: ignore[operator]
                raise ValueError(value)
            return number

        noun = "an integer" if kind is int else "a number"
        return self.parsed(name, default, parse, f"{noun} >= {minimum:g}")

    def heap(self, name: str, default: str) -> str:
        def parse(value: str) -> str:
            if not (value[:-1].isdigit() and value[-1].lower() in "kmg"):
                raise ValueError(value)
            return value

        return self.parsed(name, default, parse, "a JVM heap size such as 512m or 1g")

    def identifier(self, name: str, default: str) -> str:
        def parse(value: str) -> str:
            if not value.replace("_", "").isalnum() or len(value) > 64:
                raise ValueError(value)
            return value

        return self.parsed(name, default, parse, "a MySQL name (letters, digits, _)")

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        def parse(value: str) -> str:
            parts = urlsplit(value)
            if parts.scheme not in schemes or not (parts.netloc or parts.path):
                raise ValueError(value)
            return value

        return self.parsed(name, default, parse, f"a URL with scheme {' or '.join(schemes)}")

    def distinct_ports(self, stack: StackSettings) -> None:
        names = {
            "OMC_KAFKA_PORT": stack.kafka_port,
            "OMC_KAFKA_CONTROLLER_PORT": stack.kafka_controller_port,
            "OMC_MYSQL_PORT": stack.mysql_port,
            "OMC_REDIS_PORT": stack.redis_port,
            "OMC_ANVIL_PORT": stack.anvil_port,
            "OMC_REGISTRY_PORT": stack.registry_port,
            "OMC_GATEWAY_PORT": stack.gateway_port,
            "OMC_PROJ_MYSQL_METRICS_PORT": stack.proj_mysql_metrics_port,
            "OMC_PROJ_REDIS_METRICS_PORT": stack.proj_redis_metrics_port,
            "OMC_RUNTIME_METRICS_PORT": stack.runtime_metrics_port,
            "OMC_TXMANAGER_METRICS_PORT": stack.txmanager_metrics_port,
            "OMC_WATCHER_METRICS_PORT": stack.watcher_metrics_port,
            "OMC_NOTARY_METRICS_PORT": stack.notary_metrics_port,
            "OMC_PROJ_PROOFS_METRICS_PORT": stack.proj_proofs_metrics_port,
        }
        seen: dict[int, str] = {}
        for name, port in names.items():
            if port in seen:
                self.problems.append(f"{name} and {seen[port]} are both {port}; each needs its own")
            seen.setdefault(port, name)
