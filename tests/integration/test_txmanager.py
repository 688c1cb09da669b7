"""The tx manager on the real stack: Kafka (a fresh tx topic), the registry and anvil.

Each test writes TxRequested as the agent runtime does and steps the service in-process;
what it checks is on the topic and on the chain. Tests that need blocks without mining run a
private anvil (`--no-mining`), so the shared one keeps mining for everyone else.
"""

from __future__ import annotations

import logging
import time

import pytest
from eth_account import Account
from web3 import Web3

from omc_chain import abi
from omc_chain.artifacts import load_artifact
from omc_chain.deploy import deploy_contract
from omc_chain.signer import LocalKeySigner, Signers
from omc_config import Settings
from omc_domain.draft import DRAFT
from omc_events.chain import verify
from omc_events.records import (
    ReplaceReason,
    TxBroadcast,
    TxConfirmed,
    TxFailed,
    TxFailureCode,
    TxPurpose,
    TxReplaced,
    TxSigned,
)
from omc_txmanager.manager import Limits
from tests.support.txmanager import GWEI, PrivateAnvil, TxLog, Watcher

BOB = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def signers_of(*accounts) -> Signers:
    return Signers([LocalKeySigner(bytes(a.key)) for a in accounts])


def assert_key_nowhere(account, txlog: TxLog, caplog: pytest.LogCaptureFixture) -> None:
    secret = bytes(account.key).hex()
    assert secret not in caplog.text.lower()
    assert bytes(account.key) not in b"".join(r.value + r.key for r in txlog.read())
    assert secret.encode() not in b"".join(r.value for r in txlog.read())


def step_until_crash(manager) -> None:
    for _ in range(200):
        manager.step()


def of(records, kind):
    return [r for r in records if isinstance(r, kind)]


def test_a_request_is_signed_and_recorded_before_it_is_broadcast_and_mined(
        txlog: TxLog, funded_account, web3: Web3, captured) -> None:
    manager = txlog.manager(signers_of(funded_account))
    request = txlog.request(funded_account.address, BOB, 12345)

    records = txlog.run_until(manager, lambda rs: of(rs, TxBroadcast))

    reads = txlog.read()
    signed_at = [r.offset for r in reads if isinstance(r.record, TxSigned)]
    broadcast_at = [r.offset for r in reads if isinstance(r.record, TxBroadcast)]
    assert len(signed_at) == 1
    assert len(broadcast_at) == 1
    assert signed_at[0] < broadcast_at[0]
    (signed,) = of(records, TxSigned)
    assert (signed.request_id, signed.nonce, signed.meta.sequence) == (request.request_id, 0, 1)
    assert signed.meta.aggregate_type == "account"
    assert signed.meta.aggregate_id == f"31337:{funded_account.address}"
    (sent,) = of(records, TxBroadcast)
    assert (sent.tx_hash, sent.attempt, sent.already_known) == (signed.tx_hash, 1, False)
    assert sent.rpc_endpoint == "127.0.0.1:18545"
    receipt = web3.eth.wait_for_transaction_receipt(signed.tx_hash, timeout=10)
    assert receipt["status"] == 1
    mined = web3.eth.get_transaction(signed.tx_hash)
    assert (mined["to"], mined["value"], mined["nonce"]) == (BOB, 12345, 0)
    assert mined["maxFeePerGas"] <= 500 * GWEI
    count, problems = verify(txlog.bodies())
    assert count == 3
    assert problems == []
    assert_key_nowhere(funded_account, txlog, captured)


def test_the_same_request_written_twice_is_one_transaction(txlog: TxLog, funded_account,
                                                           web3: Web3) -> None:
    manager = txlog.manager(signers_of(funded_account))
    txlog.request(funded_account.address, BOB, 7, n=1)
    txlog.request(funded_account.address, BOB, 7, n=1)
    txlog.run_until(manager, lambda rs: of(rs, TxBroadcast))
    txlog.request(funded_account.address, BOB, 7, n=1)  # once more, after it was handled
    for _ in range(10):
        manager.step()

    records = txlog.records()
    assert len(of(records, TxSigned)) == 1
    assert len(of(records, TxBroadcast)) == 1
    assert web3.eth.get_transaction_count(funded_account.address) == 1


def test_a_crash_between_signing_and_broadcast_rebroadcasts_the_same_transaction(
        txlog: TxLog, funded_account, web3: Web3) -> None:
    class Crash(BaseException):
        pass

    def crash(*_args, **_kwargs):
        raise Crash

    first = txlog.manager(signers_of(funded_account))
    first.broadcast = crash  # dies right after TxSigned was acknowledged
    txlog.request(funded_account.address, BOB, 99)
    with pytest.raises(Crash):
        step_until_crash(first)
    first.consumer.close()  # gone, nothing committed
    (signed,) = of(txlog.records(), TxSigned)
    assert web3.eth.get_transaction_count(funded_account.address, "pending") == 0

    second = txlog.manager(signers_of(funded_account))
    records = txlog.run_until(second, lambda rs: of(rs, TxBroadcast))

    assert len(of(records, TxSigned)) == 1
    (sent,) = of(records, TxBroadcast)
    assert sent.tx_hash == signed.tx_hash
    receipt = web3.eth.wait_for_transaction_receipt(signed.tx_hash, timeout=10)
    assert receipt["status"] == 1
    assert web3.eth.get_transaction_count(funded_account.address) == 1
    assert verify(txlog.bodies())[1] == []


def test_insufficient_funds_fails_the_request_and_frees_its_nonce(
        txlog: TxLog, web3: Web3, captured) -> None:
    poor = Account.create()
    web3.provider.make_request("anvil_setBalance", [poor.address, hex(10**15)])
    manager = txlog.manager(signers_of(poor))
    broke = txlog.request(poor.address, BOB, 10**18, gas_limit=21000)

    records = txlog.run_until(manager, lambda rs: of(rs, TxFailed))

    (failed,) = of(records, TxFailed)
    assert failed.request_id == broke.request_id
    assert failed.code == TxFailureCode.INSUFFICIENT_FUNDS
    assert failed.nonce == 0
    assert "insufficient funds" in failed.detail.lower()
    assert of(records, TxBroadcast) == []
    affordable = txlog.request(poor.address, BOB, 1)
    records = txlog.run_until(manager, lambda rs: of(rs, TxBroadcast))
    (signed,) = [s for s in of(records, TxSigned) if s.request_id == affordable.request_id]
    assert signed.nonce == 0  # the failed request's nonce was never used
    assert web3.eth.wait_for_transaction_receipt(signed.tx_hash, timeout=10)["status"] == 1
    assert_key_nowhere(poor, txlog, captured)


def test_a_nonce_used_outside_the_tx_manager_is_skipped(txlog: TxLog, funded_account,
                                                        web3: Web3) -> None:
    outside = funded_account.sign_transaction({
        "type": 2, "chainId": 31337, "nonce": 0, "gas": 21000, "to": BOB, "value": 1,
        "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI})
    web3.eth.wait_for_transaction_receipt(web3.eth.send_raw_transaction(
        outside.raw_transaction), timeout=10)
    manager = txlog.manager(signers_of(funded_account))
    txlog.request(funded_account.address, BOB, 5)

    records = txlog.run_until(manager, lambda rs: of(rs, TxBroadcast))

    (signed,) = of(records, TxSigned)
    assert signed.nonce == 1
    assert web3.eth.wait_for_transaction_receipt(signed.tx_hash, timeout=10)["status"] == 1


def test_transactions_the_node_lost_are_rebroadcast_on_restart(
        txlog: TxLog, anvil: PrivateAnvil) -> None:
    account = Account.create()
    anvil.call("anvil_setBalance", account.address, hex(10**18))
    first = txlog.manager(signers_of(account), rpc_urls=anvil.url)
    txlog.request(account.address, BOB, 1, gas_limit=21000)
    txlog.request(account.address, BOB, 2, gas_limit=21000)
    txlog.run_until(first, lambda rs: len(of(rs, TxBroadcast)) == 2)
    first.close()
    anvil.call("anvil_dropAllTransactions")  # the node forgets both: nonces 0 and 1 are a gap
    assert int(anvil.call("eth_getTransactionCount", account.address, "pending"), 16) == 0

    second = txlog.manager(signers_of(account), rpc_urls=anvil.url)
    records = txlog.run_until(second, lambda rs: len(of(rs, TxBroadcast)) == 4)
    anvil.call("evm_mine")

    signed = of(records, TxSigned)
    assert [s.nonce for s in signed] == [0, 1]
    again = of(records, TxBroadcast)[2:]
    assert [b.tx_hash for b in again] == [s.tx_hash for s in signed]
    assert [b.attempt for b in again] == [2, 2]
    for s in signed:
        receipt = anvil.call("eth_getTransactionReceipt", s.tx_hash)
        assert receipt is not None
        assert receipt["status"] == "0x1"
    assert int(anvil.call("eth_getTransactionCount", account.address, "latest"), 16) == 2


def test_a_stuck_transaction_is_replaced_with_higher_fees_and_only_one_is_mined(
        txlog: TxLog, anvil: PrivateAnvil) -> None:
    account = Account.create()
    anvil.call("anvil_setBalance", account.address, hex(10**18))
    manager = txlog.manager(signers_of(account), rpc_urls=anvil.url,
                            limits=Limits(stuck_blocks=2, tick_seconds=0.05))
    txlog.request(account.address, BOB, 3, gas_limit=21000, cap=1000 * GWEI)
    records = txlog.run_until(manager, lambda rs: of(rs, TxBroadcast))
    (original,) = of(records, TxSigned)
    for _ in range(2):  # blocks whose base fee is above the original's max fee
        anvil.call("anvil_setNextBlockBaseFeePerGas", hex(100 * GWEI))
        anvil.call("evm_mine")
    assert anvil.call("eth_getTransactionReceipt", original.tx_hash) is None

    records = txlog.run_until(manager, lambda rs: of(rs, TxReplaced))
    anvil.call("evm_mine")

    (replaced,) = of(records, TxReplaced)
    replacement = next(s for s in of(records, TxSigned) if s.tx_hash == replaced.new_tx_hash)
    assert replacement.replaces_tx_hash == original.tx_hash == replaced.old_tx_hash
    assert replacement.nonce == original.nonce == replaced.nonce
    assert int(replacement.max_fee_per_gas_wei) * 10 >= int(original.max_fee_per_gas_wei) * 11
    assert int(replacement.max_priority_fee_per_gas_wei) * 10 >= \
        int(original.max_priority_fee_per_gas_wei) * 11
    assert int(replacement.max_fee_per_gas_wei) <= 1000 * GWEI
    assert anvil.call("eth_getTransactionReceipt", replacement.tx_hash)["status"] == "0x1"
    assert anvil.call("eth_getTransactionReceipt", original.tx_hash) is None
    assert int(anvil.call("eth_getTransactionCount", account.address, "latest"), 16) == 1
    assert verify(txlog.bodies())[1] == []
    sample = manager.metrics.registry.get_sample_value
    assert sample("omc_txmanager_replaced_total", {"reason": "STUCK"}) == 1
    assert sample("omc_txmanager_signed_total", {"kind": "replacement"}) == 1


def test_a_cancel_replaces_the_pending_transaction_by_a_zero_value_transfer_to_self(
        txlog: TxLog, anvil: PrivateAnvil) -> None:
    account = Account.create()
    key = f"31337:{account.address}"
    anvil.call("anvil_setBalance", account.address, hex(10**18))
    manager = txlog.manager(signers_of(account), rpc_urls=anvil.url)
    target = txlog.request(account.address, BOB, 10**17, gas_limit=21000)
    txlog.run_until(manager, lambda rs: of(rs, TxBroadcast))
    cancel = txlog.request(account.address, account.address, 0, cap=1000 * GWEI,
                           purpose=TxPurpose.CANCEL, cancels=target.request_id)

    records = txlog.run_until(manager, lambda rs: of(rs, TxReplaced))
    anvil.call("evm_mine")

    original, by = of(records, TxSigned)
    (replaced,) = of(records, TxReplaced)
    assert (by.request_id, by.nonce, by.replaces_tx_hash) == (cancel.request_id, original.nonce,
                                                              original.tx_hash)
    assert (replaced.request_id, replaced.reason) == (target.request_id, ReplaceReason.CANCEL)
    mined = anvil.call("eth_getTransactionByHash", by.tx_hash)
    assert (mined["to"].lower(), mined["value"], mined["blockNumber"] is not None) == \
        (account.address.lower(), "0x0", True)
    assert anvil.call("eth_getTransactionReceipt", original.tx_hash) is None
    receipt = anvil.call("eth_getTransactionReceipt", by.tx_hash)
    watcher = Watcher(txlog, key)  # what the chain watcher records for the cancel
    watcher.write(TxConfirmed(meta=DRAFT, request_id=cancel.request_id, tx_hash=by.tx_hash,
                              block_number=int(receipt["blockNumber"], 16),
                              block_hash=receipt["blockHash"], confirmations=1))

    records = txlog.run_until(manager, lambda rs: of(rs, TxFailed))

    (failed,) = of(records, TxFailed)
    assert (failed.request_id, failed.code) == (target.request_id, TxFailureCode.CANCELLED)
    assert cancel.request_id in failed.detail
    assert verify(txlog.bodies())[1] == []


def test_a_dead_endpoint_fails_over_to_the_next_and_events_name_hosts_only(
        txlog: TxLog, funded_account, web3: Web3, settings: Settings, captured) -> None:
    dead = "http://user:secret-token@127.0.0.1:9/rpc?key=secret-token"
    manager = txlog.manager(signers_of(funded_account),
                            rpc_urls=f"{dead},{settings.chain_rpc_url}")
    txlog.request(funded_account.address, BOB, 1)

    records = txlog.run_until(manager, lambda rs: of(rs, TxBroadcast))

    (sent,) = of(records, TxBroadcast)
    assert sent.rpc_endpoint == "127.0.0.1:18545"
    assert manager.rpc.failovers >= 1
    assert b"secret-token" not in b"".join(r.value for r in txlog.read())
    assert "secret-token" not in captured.text
    assert "127.0.0.1:9" in captured.text  # the failover was logged, by host:port
    assert web3.eth.wait_for_transaction_receipt(sent.tx_hash, timeout=10)["status"] == 1


def test_fifty_transfers_from_one_account_get_contiguous_nonces(txlog: TxLog, funded_account,
                                                                web3: Web3) -> None:
    manager = txlog.manager(signers_of(funded_account))
    for n in range(50):
        txlog.request(funded_account.address, BOB, n + 1, n=n, flush=False)
    txlog.producer.flush()

    records = txlog.run_until(manager, lambda rs: len(of(rs, TxBroadcast)) == 50)

    signed = of(records, TxSigned)
    assert sorted(s.nonce for s in signed) == list(range(50))
    assert len({s.request_id for s in signed}) == 50
    last = max(signed, key=lambda s: s.nonce)
    assert web3.eth.wait_for_transaction_receipt(last.tx_hash, timeout=20)["status"] == 1
    assert web3.eth.get_transaction_count(funded_account.address) == 50
    assert verify(txlog.bodies())[1] == []


def test_answers_still_in_flight_are_recorded_before_the_manager_closes(
        txlog: TxLog, anvil: PrivateAnvil) -> None:
    account = Account.create()
    anvil.call("anvil_setBalance", account.address, hex(10**18))
    manager = txlog.manager(signers_of(account), rpc_urls=anvil.url,
                            limits=Limits(broadcast_slice=2))
    sent: list[int] = []
    send_raw_many = manager._sender_rpc.send_raw_many

    def slow(raws):  # the node answers late: the loop has moved on meanwhile
        time.sleep(0.5)
        sent.append(len(raws))
        return send_raw_many(raws)

    manager._sender_rpc.send_raw_many = slow
    for n in range(5):
        txlog.request(account.address, BOB, 1, n=n, gas_limit=21000, flush=False)
    txlog.producer.flush()
    while len(of(txlog.records(), TxSigned)) < 5:
        manager.step()
    manager.close()

    records = txlog.records()
    assert sum(sent) == 5
    assert max(sent) == 2  # slices of at most 2
    broadcasts = of(records, TxBroadcast)
    signed = of(records, TxSigned)
    assert [b.tx_hash for b in broadcasts] == [s.tx_hash for s in signed]
    assert [s.nonce for s in signed] == list(range(5))
    assert all(records.index(s) < records.index(broadcasts[0]) for s in signed[:2])
    assert int(anvil.call("eth_getTransactionCount", account.address, "pending"), 16) == 5
    assert verify(txlog.bodies())[1] == []


def test_while_the_node_is_down_nothing_is_signed_again_and_the_same_bytes_go_out_after(
        txlog: TxLog, anvil: PrivateAnvil) -> None:
    def crash(*_args, **_kwargs):
        raise KeyboardInterrupt

    account = Account.create()
    anvil.call("anvil_setBalance", account.address, hex(10**18))
    first = txlog.manager(signers_of(account), rpc_urls=anvil.url)
    first.broadcast = crash
    txlog.request(account.address, BOB, 1, gas_limit=21000)
    with pytest.raises(KeyboardInterrupt):
        step_until_crash(first)
    first.consumer.close()
    (signed,) = of(txlog.records(), TxSigned)
    anvil.kill()

    second = txlog.manager(signers_of(account), rpc_urls=anvil.url,
                           limits=Limits(tick_seconds=0.05))
    for _ in range(4):  # every call fails: retried with backoff, nothing new is written
        second.step()
    assert [type(r).__name__ for r in txlog.records()] == ["TxRequested", "TxSigned"]
    anvil.start()
    anvil.call("anvil_setBalance", account.address, hex(10**18))
    records = txlog.run_until(second, lambda rs: of(rs, TxBroadcast))
    anvil.call("evm_mine")

    assert of(records, TxSigned) == [signed]
    assert of(records, TxBroadcast)[0].tx_hash == signed.tx_hash
    assert anvil.call("eth_getTransactionReceipt", signed.tx_hash)["status"] == "0x1"


def test_a_call_that_reverts_at_estimation_fails_with_the_reason_and_signs_nothing(
        txlog: TxLog, funded_account, web3: Web3) -> None:
    token = deploy_contract(web3, funded_account, load_artifact("DemoToken"), "Test", "T")
    manager = txlog.manager(signers_of(funded_account))
    nonce_before = web3.eth.get_transaction_count(funded_account.address)
    request = txlog.request(funded_account.address, token, 0, data=abi.encode_call(
        "transfer(address,uint256)", [BOB, 5]))  # holds no token: the transfer reverts

    records = txlog.run_until(manager, lambda rs: of(rs, TxFailed))

    (failed,) = of(records, TxFailed)
    assert (failed.request_id, failed.code) == (request.request_id, TxFailureCode.REVERTED)
    assert (failed.tx_hash, failed.nonce) == (None, None)
    assert "exceeds balance" in failed.detail
    assert of(records, TxSigned) == []
    assert web3.eth.get_transaction_count(funded_account.address) == nonce_before
