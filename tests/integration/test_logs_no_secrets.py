"""Captured logs of real runs hold no secret: the processes started through the image's
entrypoint (`python -m omc_cli.service NAME`), configured with real secrets, and used the way
an attacker or a careless client would (tokens in headers, forged and in query strings, a
signing key, RPC credentials in a URL). Every line is JSON from omc_obs.logging."""

# ruff: noqa: F811 (the fixture `database` is imported from test_gateway)
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from omc_config import Settings
from omc_gateway import apikeys
from omc_store.mysql import connect
from tests.integration.test_gateway import database, free_port  # noqa: F401

pytestmark = pytest.mark.integration
ENTRYPOINT = [sys.executable, "-m", "omc_cli.service"]


def json_lines(text: str, service: str) -> list[dict]:
    """Every line, parsed; each names the service."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(line["service"] == service for line in lines)
    return lines


def test_the_gateways_log_holds_no_api_key_secret(settings: Settings, database: str,
                                                  tmp_path: Path) -> None:
    connection = connect(settings, database=database)
    token, _ = apikeys.create_key(connection, "logcheck", apikeys.SCOPES)
    revoked, revoked_key = apikeys.create_key(connection, "logcheck", apikeys.SCOPES)
    apikeys.revoke_key(connection, revoked_key.key_id)
    connection.close()
    key_id, secret = token.split("_")[1], token.split("_", 2)[2]
    forged = f"omc_{key_id}_{secrets.token_urlsafe(32)[:43]}"
    port, log = free_port(), tmp_path / "gateway.log"
    env = {**os.environ, "OMC_MYSQL_DATABASE": database, "OMC_GATEWAY_PORT": str(port),
           "OMC_LOG_LEVEL": "debug"}
    with log.open("wb") as output:
        process = subprocess.Popen([*ENTRYPOINT, "gateway"], env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        statuses = [
            httpx.get(f"{url}/v1/tasks", headers={"Authorization": f"Bearer {token}"}),
            httpx.get(f"{url}/v1/tasks", headers={"Authorization": f"Bearer {forged}"}),
            httpx.get(f"{url}/v1/tasks", headers={"Authorization": f"Bearer {revoked}"}),
            httpx.get(f"{url}/v1/tasks?api_key={token}"),
            httpx.get(f"{url}/v1/tasks", auth=("user", secret)),
            httpx.post(f"{url}/v1/tasks", headers={"Authorization": f"Bearer {token}"},
                       content=f'{{"broken": "{token}'),
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)

    assert [answer.status_code for answer in statuses][:3] == [200, 401, 401]
    text = log.read_text()
    lines = json_lines(text, "gateway")
    assert len(lines) >= len(statuses)
    for value in (secret, forged.split("_", 2)[2], revoked.split("_", 2)[2]):
        assert value not in text


def test_the_tx_managers_log_holds_no_key_and_no_rpc_password(tmp_path: Path) -> None:
    account = Account.create()
    key_file = tmp_path / "signer.key"
    key_file.write_text(account.key.hex() + "\n")
    rpc_password = "rpc-" + secrets.token_hex(12)
    env = {**os.environ, "OMC_TXMANAGER_KEY_FILES": str(key_file),
           "OMC_TXMANAGER_RPC_URLS": f"http://operator:{rpc_password}@127.0.0.1:{free_port()}",
           "OMC_TXMANAGER_RPC_RETRIES": "0", "OMC_TXMANAGER_RPC_TIMEOUT": "1",
           "OMC_LOG_LEVEL": "debug"}

    run = subprocess.run([*ENTRYPOINT, "txmanager"], env=env, capture_output=True, text=True,
                         timeout=60, check=False)

    text = run.stdout + run.stderr
    assert run.returncode == 1, text  # no endpoint answers: it stops before signing anything
    assert "127.0.0.1" in text  # the endpoint is named, by host and port
    assert account.key.hex().removeprefix("0x") not in text.lower()
    assert rpc_password not in text
