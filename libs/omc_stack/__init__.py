"""The local stack (Kafka, MariaDB, Redis, anvil) run as plain processes under `.stack/`."""

from omc_stack.stack import ComponentStatus, Stack

__all__ = ["ComponentStatus", "Stack"]
