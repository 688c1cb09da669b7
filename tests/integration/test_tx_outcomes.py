"""How a request ends when two transactions compete for its nonce, with the real tx manager
and the real chain watcher on one fresh tx topic and a private anvil that mines when told.

- A cancel: the zero-value transfer to self is mined and confirmed (the watcher credits it
  to the CANCEL request), the target ends with TxFailed CANCELLED, the target's transfer is
  never mined: no double spend.
- A request given up at REPLACEMENT_CAP whose last transaction is mined afterwards: the
  watcher still follows it, records TxIncluded and TxConfirmed, and the tx manager's state
  ends CONFIRMED: the confirmation wins over the earlier failure.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from eth_account import Account

from omc_chain.signer import LocalKeySigner, Signers
from omc_config import Settings
from omc_domain.account import Status
from omc_events.avro import Schemas
from omc_events.chain import verify
from omc_events.records import (
    TxBroadcast,
    TxConfirmed,
    TxFailed,
    TxFailureCode,
    TxIncluded,
    TxPurpose,
    TxReplaced,
    TxSigned,
)
from omc_txmanager.manager import Limits
from omc_watcher.__main__ import build, catalogue_for
from omc_watcher.settings import WatcherSettings
from tests.support.txmanager import GWEI, PrivateAnvil, TxLog

pytestmark = pytest.mark.integration

BOB = "0x000000000000000000000000000000000000bEEF"
SCHEMAS = Schemas()


class RunningWatcher:
    """The chain watcher (`omc_watcher.__main__.build`) polling `anvil` every 50 ms in a thread
    of its own, writing to the txlog's topic and a fresh chain topic."""

    def __init__(self, settings: Settings, txlog: TxLog, anvil: PrivateAnvil,
                 fresh_topic: Callable[..., str]) -> None:
        chain_topic = fresh_topic(partitions=1)
        watcher_settings = WatcherSettings.from_env({
            "OMC_WATCHER_TX_TOPIC": txlog.topic, "OMC_WATCHER_CHAIN_TOPIC": chain_topic,
            "OMC_WATCHER_RPC_URL": anvil.url, "OMC_WATCHER_WS_URL": "off",
            "OMC_WATCHER_CHAIN_ID": "31337", "OMC_WATCHER_CONFIRMATIONS": "2",
            "OMC_WATCHER_POLL_MS": "50", "OMC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "OMC_SCHEMA_REGISTRY_URL": settings.schema_registry_url})
        topic = catalogue_for(watcher_settings)[chain_topic]
        registry = SchemaRegistryClient({"url": settings.schema_registry_url})
        for record in topic.records:
            registry.register_schema(topic.subject(record),
                                     Schema(SCHEMAS.set.standalone_json(record), "AVRO"))
        self.watcher = build(watcher_settings)
        self.started = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.started.wait(30), "the watcher did not start"

    def _run(self) -> None:
        async def go() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            try:
                await self.watcher.run(self.stop_event, started=self.started.set)
            finally:
                await self.watcher.close()

        try:
            asyncio.run(go())
        except BaseException as error:  # reported by stop()
            self.failure = error
            self.started.set()

    def stop(self) -> None:
        if self.failure is None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        if self.failure is not None:
            raise self.failure


@pytest.fixture
def watching(stack, settings: Settings, txlog: TxLog, anvil: PrivateAnvil,
             fresh_topic) -> Iterator[RunningWatcher]:
    running = RunningWatcher(settings, txlog, anvil, fresh_topic)
    yield running
    running.stop()


def of(records, kind, request_id: str | None = None):
    return [r for r in records if isinstance(r, kind)
            and (request_id is None or r.request_id == request_id)]


def funded(anvil: PrivateAnvil):
    account = Account.create()
    anvil.call("anvil_setBalance", account.address, hex(10**18))
    return account


def test_a_cancelled_request_ends_cancelled_and_only_the_cancel_is_mined(
        txlog: TxLog, anvil: PrivateAnvil, watching: RunningWatcher) -> None:
    account = funded(anvil)
    manager = txlog.manager(Signers([LocalKeySigner(bytes(account.key))]), rpc_urls=anvil.url,
                            limits=Limits(tick_seconds=0.05))
    target = txlog.request(account.address, BOB, 10**17, gas_limit=21000)
    txlog.run_until(manager, lambda rs: of(rs, TxBroadcast))
    cancel = txlog.request(account.address, account.address, 0, cap=1000 * GWEI,
                           purpose=TxPurpose.CANCEL, cancels=target.request_id)
    txlog.run_until(manager, lambda rs: of(rs, TxReplaced))

    anvil.call("evm_mine")  # the pool holds the cancel only: it replaced the target
    anvil.call("evm_mine")  # two confirmations
    records = txlog.run_until(manager, lambda rs: of(rs, TxFailed, target.request_id))

    (original,) = of(records, TxSigned, target.request_id)
    (by,) = of(records, TxSigned, cancel.request_id)
    (failed,) = of(records, TxFailed, target.request_id)
    assert failed.code == TxFailureCode.CANCELLED
    assert (failed.tx_hash, failed.nonce) == (original.tx_hash, original.nonce)
    assert cancel.request_id in failed.detail
    assert by.tx_hash in failed.detail
    (confirmed,) = of(records, TxConfirmed, cancel.request_id)
    assert confirmed.tx_hash == by.tx_hash
    assert confirmed.meta.aggregate_type == "receipts"
    assert of(records, TxIncluded, target.request_id) == []
    assert of(records, TxConfirmed, target.request_id) == []
    assert of(records, TxFailed, cancel.request_id) == []
    # on chain: one transaction at the nonce, the cancel; the transfer never happened
    assert anvil.call("eth_getTransactionReceipt", original.tx_hash) is None
    assert anvil.call("eth_getTransactionReceipt", by.tx_hash)["status"] == "0x1"
    assert int(anvil.call("eth_getBalance", BOB, "latest"), 16) == 0
    assert int(anvil.call("eth_getTransactionCount", account.address, "latest"), 16) == 1
    state = manager.states[f"31337:{account.address}"]
    assert state.requests[target.request_id].status == Status.FAILED
    assert state.requests[cancel.request_id].status == Status.CONFIRMED
    assert verify(txlog.bodies())[1] == []


def test_a_request_given_up_at_the_cap_and_then_mined_ends_confirmed(
        txlog: TxLog, anvil: PrivateAnvil, watching: RunningWatcher) -> None:
    account = funded(anvil)
    manager = txlog.manager(Signers([LocalKeySigner(bytes(account.key))]), rpc_urls=anvil.url,
                            limits=Limits(stuck_blocks=2, max_replacements=0,
                                          tick_seconds=0.05))
    request = txlog.request(account.address, BOB, 5, gas_limit=21000, cap=1000 * GWEI)
    records = txlog.run_until(manager, lambda rs: of(rs, TxBroadcast))
    (signed,) = of(records, TxSigned)
    for _ in range(2):  # blocks whose base fee is above the transaction's max fee
        anvil.call("anvil_setNextBlockBaseFeePerGas", hex(100 * GWEI))
        anvil.call("evm_mine")
    records = txlog.run_until(manager, lambda rs: of(rs, TxFailed))
    (gave_up,) = of(records, TxFailed)
    assert gave_up.code == TxFailureCode.REPLACEMENT_CAP
    assert anvil.call("eth_getTransactionReceipt", signed.tx_hash) is None

    anvil.call("anvil_setNextBlockBaseFeePerGas", hex(1))  # the market comes back, and
    anvil.call("eth_sendRawTransaction", signed.raw_tx)  # a node that had kept it sends it
    anvil.call("evm_mine")  # (anvil dropped it from its own pool under the high base fee)
    anvil.call("evm_mine")
    key = f"31337:{account.address}"
    records = txlog.run_until(manager, lambda rs: of(rs, TxConfirmed) and (
        manager.states[key].requests[request.request_id].status == Status.CONFIRMED))

    (confirmed,) = of(records, TxConfirmed, request.request_id)
    assert confirmed.tx_hash == signed.tx_hash
    assert records.index(gave_up) < records.index(confirmed)
    assert anvil.call("eth_getTransactionReceipt", signed.tx_hash)["status"] == "0x1"
    assert int(anvil.call("eth_getBalance", BOB, "latest"), 16) == 5
    assert len(of(records, TxSigned)) == 1  # nothing was signed again
    assert verify(txlog.bodies())[1] == []
