"""kill -9 the chain watcher process during a backfill, three times, and lose or double nothing.

A private anvil holds 400 blocks with one DemoToken Transfer each. `python -m omc_watcher`
backfills them into fresh topics in one-block eth_getLogs ranges, 16 a batch written at
once, 8 batches a step and a step a second, and is killed with SIGKILL as soon as it has
written more than the last time (usually between two steps, sometimes inside one), then
restarted. After the last restart it runs until every log is reported. The topic must
then hold each log exactly once, in chain order, and every hash chain must verify.
"""

# ruff: noqa: F811 (fixtures imported from the integration conftest)

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from eth_account import Account

from omc_chain import abi
from omc_events import records as r
from omc_events.chain import verify
from tests.integration.conftest import fresh_topic, kafka_admin, stack  # noqa: F401
from tests.integration.test_watcher import (  # noqa: F401
    CHAIN_ID,
    TRANSFER,
    Chain,
    Topics,
    chain,
    deploy_token,
    topics,
)

pytestmark = pytest.mark.integration

LOGS = 400


def transfers(chain: Chain, count: int) -> str:
    """A token and `count` transfers, one a block (automine, sent one after the other)."""
    owner = chain.funded()
    token = deploy_token(chain, owner)
    nonce = chain.web3.eth.get_transaction_count(owner.address)
    fee = 4 * chain.web3.eth.get_block("latest")["baseFeePerGas"] + 10**9
    sent = []
    for i in range(count):
        data = (abi.encode_call("mint(address,uint256)", [owner.address, 10**24]) if i == 0
                else abi.encode_call("transfer(address,uint256)",
                                     [Account.create().address, i]))
        signed = owner.sign_transaction({
            "type": 2, "chainId": CHAIN_ID, "nonce": nonce + i, "to": token, "value": 0,
            "data": data, "gas": 120_000, "maxPriorityFeePerGas": 10**9, "maxFeePerGas": fee})
        sent.append(chain.rpc("eth_sendRawTransaction",
                              ["0x" + signed.raw_transaction.hex().removeprefix("0x")]))
    chain.web3.eth.wait_for_transaction_receipt(sent[-1], timeout=60, poll_latency=0.05)
    return token


def test_kill_9_during_a_backfill_loses_and_doubles_nothing(chain: Chain,
                                                          topics: Topics) -> None:
    start = chain.head() + 1
    token = transfers(chain, LOGS)
    env = {**os.environ, **topics.env(chain), "OMC_WATCHER_LOG_CHUNK": "1",
           "OMC_WATCHER_POLL_MS": "1000",
           "OMC_WATCHER_SUBSCRIPTIONS": json.dumps([{
               "id": "tst", "address": token, "abi_event": TRANSFER, "from_block": start}])}

    def reported() -> int:
        return sum(isinstance(x, r.ContractEventObserved) for x in topics.read(topics.chain))

    seen, at_kill = 0, []
    while len(at_kill) < 3 and seen < LOGS:
        process = subprocess.Popen([sys.executable, "-m", "omc_watcher"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while (now := reported()) <= seen and time.monotonic() < deadline:
            assert process.poll() is None, "the watcher exited on its own"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert now > seen, "no progress within 60 s"
        seen = now
        at_kill.append(now)

    process = subprocess.Popen([sys.executable, "-m", "omc_watcher"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:  # started: its state rebuilt, signals handled
            if "recorded head" in line:
                break
        deadline = time.monotonic() + 120
        while reported() < LOGS and time.monotonic() < deadline:
            assert process.poll() is None, "the watcher exited on its own"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    print(f"killed with {at_kill} of {LOGS} logs reported")

    observed = [x for x in topics.read(topics.chain) if isinstance(x, r.ContractEventObserved)]
    expected = chain.web3.eth.get_logs({"address": token, "fromBlock": start,
                                        "toBlock": "latest"})
    assert len(expected) == LOGS
    assert [(x.block_number, x.log_index) for x in observed] == [
        (e["blockNumber"], e["logIndex"]) for e in expected]
    assert len({x.meta.event_id for x in observed}) == LOGS
    _, problems = verify(topics.raw(topics.chain))
    assert problems == []
