"""`python -m omc_watcher` as a process: configured by environment only, woken by newHeads
over WebSocket (anvil serves ws on its HTTP port), stopped by SIGTERM with exit code 0; a
bad setting stops it at once with exit code 2 and every problem named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from eth_account import Account

from omc_domain.chainview import RECEIPTS
from omc_events import records as r
from tests.integration.test_watcher import Chain, Topics, broadcast, chain, sign, topics

pytestmark = pytest.mark.integration
__all__ = ["chain", "topics"]  # fixtures


def wait_for(what, condition, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the watcher exited ({process.returncode}) before {what}: "
                        f"{process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {seconds:g}s")
        time.sleep(0.2)


def test_the_process_follows_new_heads_and_stops_cleanly(chain: Chain, topics: Topics) -> None:
    env = {**os.environ, **topics.env(chain)}
    env["OMC_WATCHER_WS_URL"] = chain.url.replace("http://", "ws://")
    env["OMC_WATCHER_POLL_MS"] = "600000"  # only newHeads wakes it (and its first step)
    process = subprocess.Popen([sys.executable, "-m", "omc_watcher"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for("the first BlockObserved", lambda: any(
            isinstance(x, r.BlockObserved) for x in topics.read(topics.chain)), process)
        sender = chain.funded()
        request = str(uuid.uuid4())
        tx_hash, raw, nonce = sign(chain, sender, to=Account.create().address, value=1)
        topics.record_signed(request, sender.address, nonce, tx_hash, raw)
        broadcast(chain, raw)

        def outcomes() -> list[type]:
            return [type(x) for x in topics.read(topics.tx) if x.meta.aggregate_type == RECEIPTS]

        def confirmed_after_a_new_block() -> bool:
            chain.mine(1)  # each block's newHeads wakes it
            return r.TxConfirmed in outcomes()

        wait_for("TxConfirmed", confirmed_after_a_new_block, process)
        assert outcomes() == [r.TxIncluded, r.TxConfirmed]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0


def test_a_bad_setting_stops_it_with_every_problem_named() -> None:
    env = {**os.environ, "OMC_WATCHER_CONFIRMATIONS": "zero",
           "OMC_WATCHER_SUBSCRIPTIONS": '[{"id": "x"}]'}
    done = subprocess.run([sys.executable, "-m", "omc_watcher"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "OMC_WATCHER_CONFIRMATIONS" in done.stderr
    assert "subscription 'x': address" in done.stderr
