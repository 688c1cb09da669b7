"""`python -m omc_txmanager` as operators run it: configured by environment, a key file,
killed with SIGKILL and restarted, stopped with SIGTERM; its output never holds the key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from web3 import Web3

from omc_events.chain import verify
from omc_events.records import TxBroadcast, TxSigned
from tests.support.txmanager import TxLog

BOB = "0x000000000000000000000000000000000000bEEF"
ROOT = Path(__file__).resolve().parents[2]


def start(txlog: TxLog, key_file: Path, output: Path) -> subprocess.Popen:
    env = {**os.environ, "OMC_TXMANAGER_TOPIC": txlog.topic,
           "OMC_TXMANAGER_DEADLETTER_TOPIC": txlog.dead, "OMC_TXMANAGER_GROUP": txlog.group,
           "OMC_TXMANAGER_KEY_FILES": str(key_file), "OMC_TXMANAGER_TICK_MS": "200",
           "OMC_TXMANAGER_SESSION_TIMEOUT_MS": "6000",
           "OMC_TXMANAGER_INSTANCE_ID": f"{txlog.group}-0"}
    return subprocess.Popen([sys.executable, "-m", "omc_txmanager"], cwd=ROOT, env=env,
                            stdout=output.open("ab"), stderr=subprocess.STDOUT)


def wait_for(txlog: TxLog, count: int, process: subprocess.Popen,
             timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the tx manager exited"
        records = txlog.records()
        if len([r for r in records if isinstance(r, TxBroadcast)]) >= count:
            return records
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} TxBroadcast after {timeout}s")


def test_killed_and_restarted_it_goes_on_from_the_log_and_stops_cleanly(
        txlog: TxLog, funded_account, web3: Web3, tmp_path: Path) -> None:
    key_file = tmp_path / "signer.key"
    key_file.write_text(bytes(funded_account.key).hex())
    output = tmp_path / "txmanager.log"
    process = start(txlog, key_file, output)
    try:
        txlog.request(funded_account.address, BOB, 1)
        wait_for(txlog, 1, process)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

        txlog.request(funded_account.address, BOB, 2)
        process = start(txlog, key_file, output)
        records = wait_for(txlog, 2, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    signed = [r for r in records if isinstance(r, TxSigned)]
    assert [s.nonce for s in signed] == [0, 1]
    for s in signed:
        assert web3.eth.wait_for_transaction_receipt(s.tx_hash, timeout=10)["status"] == 1
    assert web3.eth.get_transaction_count(funded_account.address) == 2
    assert verify(txlog.bodies())[1] == []
    text = output.read_text()
    assert "tx manager for chain 31337" in text
    assert bytes(funded_account.key).hex() not in text.lower()
