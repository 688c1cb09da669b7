"""The project's schema registry (`omc_registry`), a Python process of this checkout.

It keeps its schemas in a compacted Kafka topic, so it needs Kafka: the stack starts every
process before awaiting any, and the registry waits for Kafka by itself (bounded by
OMC_REGISTRY_KAFKA_WAIT), then reads its topic and preloads `schemas/` before it listens.
"""

from __future__ import annotations

import sys
from typing import Any

from omc_stack.components.base import Component, http_ok


class Registry(Component):
    name = "registry"
    stop_grace = 10.0

    def ports(self) -> dict[str, int]:
        return {"OMC_REGISTRY_PORT": self.settings.stack.registry_port}

    def command(self) -> list[str]:
        # Run with cwd = this component's directory, which is how the stack recognises it.
        return [
            sys.executable, "-m", "omc_registry", "--host", "127.0.0.1",
            "--port", str(self.settings.stack.registry_port),
            "--kafka-bootstrap", self.settings.kafka_bootstrap,
        ]

    def probe(self) -> None:
        http_ok(f"{self.address()['url']}/subjects")

    def address(self) -> dict[str, Any]:
        port = self.settings.stack.registry_port
        return {"host": "127.0.0.1", "port": port, "url": f"http://127.0.0.1:{port}"}
