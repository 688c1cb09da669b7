"""Redis from Debian's `redis-server`, in the foreground, with a private directory.

Its data are projections and caches, rebuildable from the log, so it takes no snapshots.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import redis

from omc_stack.components.base import Component, NotReady


class Redis(Component):
    name = "redis"
    stop_grace = 10.0

    def ports(self) -> dict[str, int]:
        return {"OMC_REDIS_PORT": self.settings.stack.redis_port}

    @cached_property
    def server(self) -> str:
        return self.installer.binary("redis-server", "redis-server")

    def install(self) -> None:
        _ = self.server

    def command(self) -> list[str]:
        return [
            self.server, "--port", str(self.settings.stack.redis_port), "--bind", "127.0.0.1",
            "--dir", str(self.dir), "--daemonize", "no", "--save", "", "--appendonly", "no",
            "--protected-mode", "yes", "--logfile", "",
        ]

    def probe(self) -> None:
        client = redis.Redis(port=self.settings.stack.redis_port, socket_timeout=2,
                             socket_connect_timeout=2)
        try:
            client.ping()
        except redis.RedisError as error:
            raise NotReady(str(error)) from error
        finally:
            client.close()

    def address(self) -> dict[str, Any]:
        port = self.settings.stack.redis_port
        return {"host": "127.0.0.1", "port": port, "url": f"redis://127.0.0.1:{port}/0"}
