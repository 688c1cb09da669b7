"""The components of the local stack, in start order: the infrastructure (`omc stack`), then
the project's services (`omc up` runs both)."""

from omc_stack.components.anvil import Anvil
from omc_stack.components.base import Component, NotReady
from omc_stack.components.kafka import Kafka
from omc_stack.components.mariadb import MariaDB
from omc_stack.components.redis import Redis
from omc_stack.components.registry import Registry
from omc_stack.components.service import (
    AgentRuntime,
    ChainWatcher,
    Gateway,
    MySQLProjector,
    Notary,
    ProofIndex,
    RedisProjector,
    Service,
    TxManager,
)

COMPONENTS: tuple[type[Component], ...] = (Kafka, Registry, MariaDB, Redis, Anvil)
SERVICES: tuple[type[Service], ...] = (MySQLProjector, RedisProjector, ProofIndex, AgentRuntime,
                                       TxManager, ChainWatcher, Notary, Gateway)

__all__ = ["COMPONENTS", "SERVICES", "AgentRuntime", "Anvil", "ChainWatcher", "Component",
           "Gateway", "Kafka", "MariaDB", "MySQLProjector", "NotReady", "Notary", "ProofIndex",
           "Redis", "RedisProjector", "Registry", "Service", "TxManager"]
