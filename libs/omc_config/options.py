"""A service's own variables (OMC_PROJ_MYSQL_*, OMC_PROJ_REDIS_*, …), read beside the
project's `Settings`, every problem collected before one `ConfigError` names them all.

    options = EnvOptions(env)                     # env: a mapping, os.environ if None
    batch = options.number("OMC_X_BATCH", 500, 1, 100_000)
    topic = options.topic("OMC_X_TOPIC", "omc.commands.v1")
    options.check()                               # raises ConfigError if anything was bad

`options.base` is the project's `Settings` (the defaults' if they were invalid: their
problems are among `options.problems`). A blank variable counts as unset.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from omc_config.settings import Settings
from omc_errors import ConfigError

TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


class EnvOptions:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = os.environ if env is None else env
        self.problems: list[str] = []
        try:
            self.base = Settings.from_env(self.env)
        except ConfigError as error:
            self.problems += error.problems
            self.base = Settings.from_env({})

    def text(self, name: str, default: str) -> str:
        return (self.env.get(name) or "").strip() or default

    def number(self, name: str, default: int, minimum: int, maximum: int = 2**31) -> int:
        """An integer in minimum..maximum (the default, and a problem, if it is not)."""
        raw = self.text(name, str(default))
        try:
            value = int(raw)
            if not minimum <= value <= maximum:
                raise ValueError(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not an integer from {minimum} to "
                                 f"{maximum}")
            return default
        return value

    def topic(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not TOPIC_NAME.fullmatch(value):
            self.problems.append(f"{name}={value!r} is not a Kafka topic name")
        return value

    def topics(self, name: str, default: Sequence[str]) -> tuple[str, ...]:
        """A comma-separated list of topic names."""
        found = tuple(t.strip() for t in self.text(name, ",".join(default)).split(","))
        for value in found:
            if not TOPIC_NAME.fullmatch(value):
                self.problems.append(f"{name}: {value!r} is not a Kafka topic name")
        return found

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def check(self) -> None:
        if self.problems:
            raise ConfigError(list(self.problems))


__all__ = ["TOPIC_NAME", "EnvOptions"]
