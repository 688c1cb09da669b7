"""The components of the local stack, in start order."""

from omc_stack.components.anvil import Anvil
from omc_stack.components.base import Component, NotReady
from omc_stack.components.kafka import Kafka
from omc_stack.components.mariadb import MariaDB
from omc_stack.components.redis import Redis
from omc_stack.components.registry import Registry

COMPONENTS: tuple[type[Component], ...] = (Kafka, Registry, MariaDB, Redis, Anvil)

__all__ = ["COMPONENTS", "Anvil", "Component", "Kafka", "MariaDB", "NotReady", "Redis", "Registry"]
