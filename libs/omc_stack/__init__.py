"""The local stack (Kafka, schema registry, MariaDB, Redis, anvil), as plain processes."""

from omc_stack.stack import ComponentStatus, Stack

__all__ = ["ComponentStatus", "Stack"]
