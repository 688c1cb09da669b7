"""Fixtures of the end-to-end tests: the stack with the log's topics, the schema, the
projections and the agent runtime running (as `omc up` runs them), a gateway process of this
session on a free port, and an API key for a tenant of this run only.

The local stack is brought up when it is not (and never stopped); the gateway started here is
stopped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from omc_cli.contract import apply_topics
from omc_cli.migrations import migrate_all
from omc_config import Settings
from omc_sdk import Client, TransportError
from omc_stack import Stack
from omc_stack.components import SERVICES
from tests.support.system import ALL_SCOPES, create_key, free_port


@pytest.fixture(scope="session")
def system(settings: Settings) -> Settings:
    """The stack with the log's topics, the schema and every service `omc up` runs."""
    stack = Stack(settings, report=lambda line: print(f"[stack] {line}"))
    stack.up()
    apply_topics(settings)
    migrate_all(settings)
    stack.up([service.name for service in SERVICES])
    return settings


@pytest.fixture(scope="session")
def gateway(system: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a gateway process started for this session."""
    port = free_port()
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    env = {**os.environ, "OMC_GATEWAY_PORT": str(port)}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "omc_gateway"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with Client(url, None, retries=0, timeout=2.0) as probe:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    pytest.fail(f"the gateway exited with {process.returncode}:\n"
                                f"{log.read_text()[-3000:]}")
                try:
                    if probe.readyz().ok:
                        break
                except TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the gateway was not ready in 60 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def tenant() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def api_key(gateway: str, tenant: str) -> str:
    return create_key(tenant, ALL_SCOPES, "e2e")


@pytest.fixture
def client(gateway: str, api_key: str) -> Iterator[Client]:
    with Client(gateway, api_key, timeout=15.0) as client:
        yield client
