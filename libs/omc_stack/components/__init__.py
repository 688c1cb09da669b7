"""The components of the local stack, in start order.

The schema registry joins this list with the event-contract work.
"""

from omc_stack.components.anvil import Anvil
from omc_stack.components.base import Component, NotReady
from omc_stack.components.kafka import Kafka
from omc_stack.components.mariadb import MariaDB
from omc_stack.components.redis import Redis

COMPONENTS: tuple[type[Component], ...] = (Kafka, MariaDB, Redis, Anvil)

__all__ = ["COMPONENTS", "Anvil", "Component", "Kafka", "MariaDB", "NotReady", "Redis"]
