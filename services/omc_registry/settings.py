"""What the registry process is configured with: the project's settings plus its own.

    OMC_KAFKA_BOOTSTRAP, OMC_REGISTRY_PORT    from the project's settings (omc_config)
    OMC_REGISTRY_HOST                         interface to listen on (127.0.0.1)
    OMC_REGISTRY_TOPIC                        its compacted topic (_omc_schemas)
    OMC_REGISTRY_KAFKA_WAIT                   seconds to wait for Kafka at start (180)
    OMC_REGISTRY_SCHEMAS_DIR                  the schemas/ folder to preload (the checkout's)
    OMC_REGISTRY_PRELOAD                      false: register nothing at start (true)
    OMC_REGISTRY_COMPATIBILITY                global level until one is set (BACKWARD_TRANSITIVE)

Command-line options of `python -m omc_registry` override them. Every invalid value is
reported at once, as a `ConfigError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omc_config import Settings
from omc_errors import ConfigError
from omc_events import compat
from omc_events.schemas import SCHEMAS_DIR

DEFAULT_TOPIC = "_omc_schemas"
TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class RegistrySettings:
    kafka_bootstrap: str
    host: str
    port: int
    topic: str
    kafka_wait: float
    schemas_dir: Path | None  # None: no preload
    default_level: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> RegistrySettings:
        """Read the environment; `overrides` (non-None values) win, as command-line options."""
        env = os.environ if env is None else env
        problems: list[str] = []
        try:
            base = Settings.from_env(env)
        except ConfigError as error:
            problems += error.problems
            base = Settings.from_env({})

        def value(name: str, key: str, default: str) -> str:
            given = overrides.get(key)
            if given is not None:
                return str(given)
            return (env.get(name) or "").strip() or default

        topic = value("OMC_REGISTRY_TOPIC", "topic", DEFAULT_TOPIC)
        if not TOPIC_NAME.fullmatch(topic) or topic in (".", ".."):
            problems.append(f"OMC_REGISTRY_TOPIC={topic!r} is not a Kafka topic name")
        wait_text = value("OMC_REGISTRY_KAFKA_WAIT", "kafka_wait", "180")
        try:
            kafka_wait = float(wait_text)
            if kafka_wait <= 0:
                raise ValueError(wait_text)
        except ValueError:
            problems.append(f"OMC_REGISTRY_KAFKA_WAIT={wait_text!r} is not a number of seconds > 0")
            kafka_wait = 180.0
        preload = value("OMC_REGISTRY_PRELOAD", "preload", "true").lower()
        if preload not in TRUE | FALSE:
            problems.append(f"OMC_REGISTRY_PRELOAD={preload!r} is not true or false")
        schemas_dir = Path(value("OMC_REGISTRY_SCHEMAS_DIR", "schemas_dir", str(SCHEMAS_DIR)))
        level = value("OMC_REGISTRY_COMPATIBILITY", "default_level", "BACKWARD_TRANSITIVE").upper()
        if level not in compat.LEVELS:
            problems.append(f"OMC_REGISTRY_COMPATIBILITY={level!r} is not one of "
                            f"{', '.join(compat.LEVELS)}")
        port = overrides.get("port") or base.stack.registry_port
        if not (isinstance(port, int) and 1 <= port <= 65535):
            problems.append(f"port {port!r} is not a port number (1-65535)")
        if problems:
            raise ConfigError(problems)
        return cls(
            kafka_bootstrap=value("OMC_KAFKA_BOOTSTRAP", "kafka_bootstrap", base.kafka_bootstrap),
            host=value("OMC_REGISTRY_HOST", "host", "127.0.0.1"),
            port=port,
            topic=topic,
            kafka_wait=kafka_wait,
            schemas_dir=schemas_dir.expanduser().resolve() if preload in TRUE else None,
            default_level=level,
        )
