"""Anvil, the local EVM chain, from the npm package `@foundry-rs/anvil` pinned in deploy/anvil.

It mines every transaction at once unless `OMC_BLOCK_TIME` sets an interval in seconds.
Its dev accounts are public knowledge: never use them outside local development.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from functools import cached_property
from pathlib import Path
from typing import Any

from omc_errors import MissingDependency
from omc_stack.components.base import DEPLOY_DIR, Component, NotReady

ANVIL_DEPLOY = DEPLOY_DIR / "anvil"


class Anvil(Component):
    name = "anvil"
    stop_grace = 10.0

    @property
    def tool_dir(self) -> Path:
        return self.dir / "tool"

    def ports(self) -> dict[str, int]:
        return {"OMC_ANVIL_PORT": self.settings.stack.anvil_port}

    def install(self) -> None:
        npm = self.installer.binary("npm", "npm")
        self.installer.fetched(
            self.tool_dir,
            ANVIL_DEPLOY / "package.json",
            [npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"],
            what="anvil from npm",
            copy_pin=True,
        )
        _ = self.binary

    @cached_property
    def binary(self) -> str:
        """The native binary inside the platform package (not npm's node wrapper)."""
        found = sorted(self.tool_dir.glob("node_modules/@foundry-rs/anvil-*/bin/anvil"))
        if not found:
            raise MissingDependency(
                f"anvil's native binary is missing under {self.tool_dir}/node_modules; "
                f"remove {self.tool_dir} and run `omc stack up anvil` to reinstall it"
            )
        return str(found[0])

    def command(self) -> list[str]:
        # The chain keeps its state across restarts, as Kafka keeps the log that describes
        # it (accounts' nonces, deployed contracts, anchored roots): loaded from and dumped
        # to state.json, every few seconds and on a clean stop.
        command = [
            self.binary, "--host", "127.0.0.1", "--port", str(self.settings.stack.anvil_port),
            "--chain-id", str(self.settings.stack.chain_id),
            "--state", str(self.dir / "state.json"), "--state-interval", "2",
        ]
        if self.settings.stack.block_time > 0:
            command += ["--block-time", f"{self.settings.stack.block_time:g}"]
        return command

    def probe(self) -> None:
        chain_id = rpc(self.address()["url"], "eth_chainId")
        if int(chain_id, 16) != self.settings.stack.chain_id:
            raise NotReady(f"answers chain id {int(chain_id, 16)}, expected "
                           f"{self.settings.stack.chain_id}")

    def address(self) -> dict[str, Any]:
        port = self.settings.stack.anvil_port
        return {"host": "127.0.0.1", "port": port, "url": f"http://127.0.0.1:{port}",
                "chain_id": self.settings.stack.chain_id}


def rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    """One JSON-RPC call; raises `NotReady` when the node does not answer it."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(  # noqa: S310 - the URL is the stack's own http address
        url, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback URL
            answer = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise NotReady(f"{method}: {error}") from error
    if "result" not in answer:
        raise NotReady(f"{method}: {answer.get('error')}")
    return answer["result"]
