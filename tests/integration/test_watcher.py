"""The chain watcher on a real anvil and a real Kafka, with fresh topics.

Each test runs a PRIVATE anvil (snapshots, reverts and mined blocks there disturb nobody) and
fresh topics standing for omc.tx.events.v1 and omc.chain.events.v1, their subjects registered
under the fresh names. The test plays the transaction manager: it signs with eth-account,
records TxSigned on the fresh tx topic, broadcasts. The watcher is driven step by step
in-process (`Watcher.step`), so what each step may write is asserted exactly;
test_watcher_process.py runs `python -m omc_watcher` as a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from omc_chain import abi
from omc_chain.artifacts import load_artifact
from omc_chain.deploy import deploy_contract, send_call
from omc_chain.errors import ChainUnavailable
from omc_config import Settings
from omc_domain.chainview import RECEIPTS
from omc_events import records as r
from omc_events.avro import Schemas
from omc_events.chain import seal, verify
from omc_events.codec import Codec, split
from omc_events.envelope import ChainHead, derived_id
from omc_events.record import Record
from omc_kafka.follow import TopicReader
from omc_kafka.producer import EventProducer, producer_config
from omc_watcher.__main__ import catalogue_for
from omc_watcher.rpc import Node
from omc_watcher.settings import WatcherSettings
from omc_watcher.watcher import Watcher

pytestmark = pytest.mark.integration

SCHEMAS = Schemas()
CHAIN_ID = 31337
TRANSFER = "Transfer(address indexed from, address indexed to, uint256 value)"


# -- a private anvil ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def anvil_binary(settings: Settings) -> str:
    found = sorted((settings.stack.dir / "anvil" / "tool").glob(
        "node_modules/@foundry-rs/anvil-*/bin/anvil"))
    if not found:
        pytest.fail(f"anvil is not installed under {settings.stack.dir}; run `omc stack up`")
    return str(found[0])


@dataclasses.dataclass
class Chain:
    url: str
    web3: Web3

    def rpc(self, method: str, params: list | None = None):
        answer = self.web3.provider.make_request(method, params or [])
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def head(self) -> int:
        return self.web3.eth.block_number

    def funded(self) -> LocalAccount:
        account = Account.create()
        self.rpc("anvil_setBalance", [account.address, hex(10 * 10**18)])
        return account


@contextlib.contextmanager
def private_anvil(settings: Settings) -> Iterator[Chain]:
    """An anvil of its own on a free port (automine), stopped afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [anvil_binary(settings), "--host", "127.0.0.1", "--port", str(port), "--chain-id",
         str(CHAIN_ID), "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    web3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    try:
        for _ in range(200):
            try:
                if web3.eth.chain_id == CHAIN_ID:
                    break
            except Exception:
                time.sleep(0.05)
                continue
        yield Chain(url, web3)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def chain(stack, settings: Settings) -> Iterator[Chain]:
    with private_anvil(settings) as running:
        yield running


# -- fresh topics -----------------------------------------------------------------------------


@dataclasses.dataclass
class Topics:
    tx: str
    chain: str
    codec: Codec
    settings: Settings
    heads: dict[str, ChainHead] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.producer = EventProducer(Producer(producer_config(self.settings)), self.codec,
                                      "omc/test")

    def env(self, chain: Chain, **extra: str) -> dict[str, str]:
        return {"OMC_WATCHER_TX_TOPIC": self.tx, "OMC_WATCHER_CHAIN_TOPIC": self.chain,
                "OMC_WATCHER_RPC_URL": chain.url, "OMC_WATCHER_WS_URL": "off",
                "OMC_WATCHER_CHAIN_ID": str(CHAIN_ID), "OMC_WATCHER_CONFIRMATIONS": "2",
                "OMC_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
                "OMC_SCHEMA_REGISTRY_URL": self.settings.schema_registry_url, **extra}

    def watcher(self, chain: Chain, node: Node | None = None, **extra: str) -> Watcher:
        settings = WatcherSettings.from_env(self.env(chain, **extra))
        return Watcher(settings, node or Node(chain.url), self.producer)

    def record_signed(self, request_id: str, sender: str, nonce: int, tx_hash: str,
                      raw_tx: str, replaces: str | None = None) -> r.TxSigned:
        """What the tx manager records before broadcasting (account aggregate, chained)."""
        key = f"{CHAIN_ID}:{sender}"
        head = self.heads.get(key, ChainHead())
        meta = r.EventMeta(
            event_id=derived_id(request_id, head.sequence), event_type=r.TxSigned.SCHEMA,
            schema_version=1, aggregate_type="account", aggregate_id=key, sequence=0,
            occurred_at=datetime.now(UTC), tenant="acme", actor="svc:tx-manager",
            correlation_id=request_id, prev_hash="", hash="")
        record = r.TxSigned(meta=meta, request_id=request_id, chain_id=CHAIN_ID,
                            sender=sender, nonce=nonce, tx_hash=tx_hash, raw_tx=raw_tx,
                            gas_limit=100_000, max_fee_per_gas_wei="100000000000",
                            max_priority_fee_per_gas_wei="1000000000",
                            replaces_tx_hash=replaces)
        sealed, self.heads[key] = seal(SCHEMAS, record, head)
        self.producer.send(self.tx, sealed, key=key)
        self.producer.flush()
        return sealed

    def read(self, topic: str) -> list[Record]:
        found: list[Record] = []

        async def go() -> None:
            await TopicReader(self.settings.kafka_bootstrap, self.codec, topic,
                              lambda record, _: found.append(record)).read_to_end(30)

        asyncio.run(go())
        return found

    def raw(self, topic: str) -> list[tuple[str, bytes]]:
        """(where, Avro body) of every message, for the chain verifier."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap,
                             "group.id": f"omc.test.{uuid.uuid4().hex}",
                             "enable.auto.commit": False})
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out = []
        while sum(ends.values()) > len(out):
            for message in consumer.consume(500, 0.1):
                if message.error() is None:
                    out.append((f"{topic}/{message.partition()}@{message.offset()}",
                                split(message.value())[1]))
        consumer.close()
        return out


def fresh_topics(settings: Settings, fresh_topic: Callable[..., str]) -> Topics:
    """Fresh topics standing for the tx and chain topics, their subjects registered."""
    tx, chain_topic = fresh_topic(partitions=2), fresh_topic(partitions=1)
    env = {"OMC_WATCHER_TX_TOPIC": tx, "OMC_WATCHER_CHAIN_TOPIC": chain_topic,
           "OMC_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "OMC_SCHEMA_REGISTRY_URL": settings.schema_registry_url}
    catalogue = catalogue_for(WatcherSettings.from_env(env))
    registry = SchemaRegistryClient({"url": settings.schema_registry_url})
    for name in (tx, chain_topic):
        topic = catalogue[name]
        for record in topic.records:
            registry.register_schema(topic.subject(record),
                                     Schema(SCHEMAS.set.standalone_json(record), "AVRO"))
    codec = Codec(registry, schemas=SCHEMAS, catalogue=catalogue)
    return Topics(tx, chain_topic, codec, settings)


@pytest.fixture
def topics(stack, settings: Settings, fresh_topic: Callable[..., str]) -> Topics:
    return fresh_topics(settings, fresh_topic)


# -- helpers --------------------------------------------------------------------------------


def sign(chain: Chain, account: LocalAccount, *, to: str, value: int = 0, data: str = "0x",
         gas: int = 21_000, nonce: int | None = None,
         tip: int = 10**9) -> tuple[str, str, int]:
    """(tx hash, raw tx, nonce) of an EIP-1559 transaction signed by `account`."""
    nonce = chain.web3.eth.get_transaction_count(account.address, "pending") \
        if nonce is None else nonce
    base_fee = chain.web3.eth.get_block("latest")["baseFeePerGas"]
    signed = account.sign_transaction({
        "type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": to, "value": value,
        "data": data, "gas": gas, "maxPriorityFeePerGas": tip,
        "maxFeePerGas": 4 * base_fee + tip})
    return "0x" + signed.hash.hex().removeprefix("0x"), \
        "0x" + signed.raw_transaction.hex().removeprefix("0x"), nonce


def broadcast(chain: Chain, raw_tx: str) -> None:
    chain.rpc("eth_sendRawTransaction", [raw_tx])


def steps(watcher: Watcher, *actions: Callable[[], object]) -> None:
    """Start `watcher`, then for each action: run it (a chain change) and step once."""

    async def go() -> None:
        await watcher.start()
        try:
            for action in actions:
                await asyncio.to_thread(action)
                await watcher.tx_reader.wait_current()
                await watcher.step()
        finally:
            await watcher.close()

    asyncio.run(go())


def nothing() -> None:
    return None


def receipts_of(records: list[Record], request_id: str | None = None) -> list[Record]:
    return [x for x in records if x.meta.aggregate_type == RECEIPTS
            and (request_id is None or x.request_id == request_id)]


def deploy_token(chain: Chain, owner: LocalAccount) -> str:
    return deploy_contract(chain.web3, owner, load_artifact("DemoToken"), "Test", "TST")


def transfer_data(to: str, amount: int) -> str:
    return abi.encode_call("transfer(address,uint256)", [to, amount])


# -- tests ----------------------------------------------------------------------------------


def test_a_transfer_is_included_then_confirmed_at_depth_with_the_nodes_receipt(
        chain: Chain, topics: Topics) -> None:
    sender, recipient = chain.funded(), Account.create().address
    request = str(uuid.uuid4())
    tx_hash, raw, nonce = sign(chain, sender, to=recipient, value=12345)

    def send() -> None:
        topics.record_signed(request, sender.address, nonce, tx_hash, raw)
        broadcast(chain, raw)  # automine: in a block at once

    steps(topics.watcher(chain), send)
    after_inclusion = receipts_of(topics.read(topics.tx), request)
    assert [type(x) for x in after_inclusion] == [r.TxIncluded]  # depth 2 not reached yet
    steps(topics.watcher(chain), lambda: chain.mine(1))  # a restart, then one block

    events = receipts_of(topics.read(topics.tx), request)
    assert [type(x) for x in events] == [r.TxIncluded, r.TxConfirmed]
    included, confirmed = events
    node = chain.web3.eth.get_transaction_receipt(tx_hash)
    assert included.tx_hash == tx_hash
    assert included.block_number == node["blockNumber"]
    assert included.block_hash == "0x" + node["blockHash"].hex().removeprefix("0x")
    assert included.gas_used == node["gasUsed"] == 21_000
    assert included.effective_gas_price_wei == str(node["effectiveGasPrice"])
    assert included.transaction_index == node["transactionIndex"]
    assert included.status_ok is True
    assert (confirmed.block_hash, confirmed.confirmations) == (included.block_hash, 2)
    assert included.meta.aggregate_id == f"{CHAIN_ID}:{sender.address}"
    assert included.meta.tenant == "acme"
    signed_id = topics.read(topics.tx)[0].meta.event_id
    assert included.meta.event_id == derived_id(signed_id, 0)
    assert confirmed.meta.event_id == derived_id(signed_id, 1)
    checked, problems = verify(topics.raw(topics.tx) + topics.raw(topics.chain))
    assert checked > 2
    assert problems == []


def test_a_reverted_transaction_fails_at_depth(chain: Chain, topics: Topics) -> None:
    owner = chain.funded()
    token = deploy_token(chain, owner)
    request = str(uuid.uuid4())
    # more tokens than the sender has: the ERC-20 reverts; a fixed gas limit skips estimation
    tx_hash, raw, nonce = sign(chain, owner, to=token, gas=100_000,
                               data=transfer_data(Account.create().address, 10**30))

    def send() -> None:
        topics.record_signed(request, owner.address, nonce, tx_hash, raw)
        broadcast(chain, raw)

    steps(topics.watcher(chain), send, lambda: chain.mine(1))
    events = receipts_of(topics.read(topics.tx), request)
    assert [type(x) for x in events] == [r.TxIncluded, r.TxFailed]
    assert events[0].status_ok is False
    assert events[1].code == r.TxFailureCode.REVERTED
    assert (events[1].tx_hash, events[1].nonce) == (tx_hash, nonce)
    assert chain.web3.eth.get_transaction_receipt(tx_hash)["status"] == 0


def test_a_reorg_is_detected_the_tx_reorged_its_log_taken_back_then_included_again(
        chain: Chain, topics: Topics, spans) -> None:
    owner, recipient = chain.funded(), Account.create().address
    token = deploy_token(chain, owner)
    send_call(chain.web3, owner, token, abi.encode_call("mint(address,uint256)",
                                                        [owner.address, 1000]))
    subscription = json.dumps([{"id": "tst", "address": token, "abi_event": TRANSFER,
                                "from_block": chain.head() + 1}])
    request = str(uuid.uuid4())
    tx_hash, raw, nonce = sign(chain, owner, to=token, gas=100_000,
                               data=transfer_data(recipient, 7))
    snapshot: dict[str, str] = {}

    def send() -> None:
        snapshot["id"] = chain.rpc("evm_snapshot")
        topics.record_signed(request, owner.address, nonce, tx_hash, raw)
        broadcast(chain, raw)

    def reorg() -> None:
        assert chain.rpc("evm_revert", [snapshot["id"]]) is True
        chain.mine(3)  # a longer chain without the transaction

    def rebroadcast() -> None:
        try:
            broadcast(chain, raw)  # what the tx manager does: the same signed bytes again
        except RuntimeError as error:  # the node kept it from the removed block
            if "known" not in str(error).lower() and "nonce" not in str(error).lower():
                raise
        chain.mine(1)

    watcher = topics.watcher(chain, OMC_WATCHER_SUBSCRIPTIONS=subscription)
    steps(watcher, nothing, send, reorg, rebroadcast, lambda: chain.mine(1))

    chain_events = topics.read(topics.chain)
    reorgs = [x for x in chain_events if isinstance(x, r.ReorgDetected)]
    assert len(reorgs) == 1
    logs = [x for x in chain_events if isinstance(x, r.ContractEventObserved)]
    first, taken_back = logs[0], logs[1]
    assert (first.removed, taken_back.removed) == (False, True)
    assert (taken_back.block_hash, taken_back.log_index) == (first.block_hash, first.log_index)
    assert first.block_hash in reorgs[0].removed_block_hashes
    assert json.loads(first.decoded_json) == {"from": owner.address, "to": recipient,
                                              "value": "7"}
    assert first.event_signature == "Transfer(address,address,uint256)"
    assert reorgs[0].depth == 1
    assert reorgs[0].new_head_number == reorgs[0].common_ancestor_number + 3

    events = receipts_of(topics.read(topics.tx), request)
    assert [type(x) for x in events] == [r.TxIncluded, r.TxReorged, r.TxIncluded,
                                         r.TxConfirmed]
    assert events[1].old_block_hash == events[0].block_hash
    assert events[2].block_hash != events[0].block_hash
    assert events[3].block_hash == events[2].block_hash
    relogged = [x for x in logs[2:] if not x.removed]
    assert [x.block_hash for x in relogged] == [events[2].block_hash]
    assert len({x.meta.event_id for x in chain_events}) == len(chain_events)
    _, problems = verify(topics.raw(topics.tx) + topics.raw(topics.chain))
    assert problems == []
    (reorged_span,) = [s for s in spans.get_finished_spans()
                       if s.name == "watcher omc.tx.TxReorged"]  # traced like the receipts
    assert events[1].meta.traceparent.split("-")[2] == f"{reorged_span.context.span_id:016x}"
    assert reorged_span.attributes["omc.request_id"] == request


def test_whichever_replacement_is_mined_settles_the_request(chain: Chain,
                                                          topics: Topics) -> None:
    sender, recipient = chain.funded(), Account.create().address
    request = str(uuid.uuid4())
    chain.rpc("anvil_setAutomine", [False])  # the first one stays pending: "stuck"
    old_hash, old_raw, nonce = sign(chain, sender, to=recipient, value=1)
    new_hash, new_raw, _ = sign(chain, sender, to=recipient, value=1, nonce=nonce,
                                tip=3 * 10**9)  # the same nonce, fees well above +10 %

    def stuck() -> None:
        topics.record_signed(request, sender.address, nonce, old_hash, old_raw)
        broadcast(chain, old_raw)

    def replaced_and_mined() -> None:
        topics.record_signed(request, sender.address, nonce, new_hash, new_raw,
                             replaces=old_hash)
        broadcast(chain, new_raw)
        chain.mine(1)

    steps(topics.watcher(chain), stuck, replaced_and_mined, lambda: chain.mine(1))
    events = receipts_of(topics.read(topics.tx), request)
    assert [type(x) for x in events] == [r.TxIncluded, r.TxConfirmed]
    assert {x.tx_hash for x in events} == {new_hash}
    assert {x.request_id for x in events} == {request}
    assert chain.web3.eth.get_transaction_receipt(new_hash)["status"] == 1
    signed_new = [x for x in topics.read(topics.tx) if isinstance(x, r.TxSigned)][1]
    assert events[0].meta.causation_id == signed_new.meta.event_id


class FailingNode(Node):
    """The real node, failing the `fail_at`-th eth_getLogs batch (a node going away)."""

    def __init__(self, url: str, fail_at: int) -> None:
        super().__init__(url)
        self.fail_at = fail_at
        self.log_batches = 0

    async def logs(self, filters, decode=None):
        self.log_batches += 1
        if self.log_batches == self.fail_at:
            raise ChainUnavailable("eth_getLogs: the test's node went away")
        return await super().logs(filters, decode)


def test_a_subscription_backfills_goes_live_and_resumes_without_duplicate_or_gap(
        chain: Chain, topics: Topics) -> None:
    owner = chain.funded()
    token = deploy_token(chain, owner)
    start = chain.head()
    send_call(chain.web3, owner, token, abi.encode_call("mint(address,uint256)",
                                                        [owner.address, 10**6]))
    for amount in range(1, 6):  # transfers spread over ~60 blocks
        send_call(chain.web3, owner, token, transfer_data(Account.create().address, amount))
        chain.mine(12)
    subscription = json.dumps([{"id": "tst", "address": token, "abi_event": TRANSFER,
                                "from_block": start}])
    extra = {"OMC_WATCHER_SUBSCRIPTIONS": subscription, "OMC_WATCHER_LOG_CHUNK": "1"}

    # 16 one-block chunks per batch: the second batch fails mid-backfill
    failing = topics.watcher(chain, FailingNode(chain.url, fail_at=2), **extra)
    with pytest.raises(ChainUnavailable):
        steps(failing, nothing)
    partial = [x for x in topics.read(topics.chain) if isinstance(x, r.ContractEventObserved)]
    assert 0 < len(partial) < 6

    def live_transfer() -> None:
        send_call(chain.web3, owner, token, transfer_data(Account.create().address, 99))

    steps(topics.watcher(chain, **extra), nothing, live_transfer)
    steps(topics.watcher(chain, **extra), live_transfer)  # a restart, then live again

    observed = [x for x in topics.read(topics.chain) if isinstance(x, r.ContractEventObserved)]
    expected = chain.web3.eth.get_logs({"address": token, "fromBlock": start,
                                        "toBlock": "latest"})
    assert len(expected) == 1 + 5 + 2
    assert [(x.block_number, x.log_index) for x in observed] == [
        (e["blockNumber"], e["logIndex"]) for e in expected]
    assert all(not x.removed for x in observed)
    values = [json.loads(x.decoded_json)["value"] for x in observed]
    assert values == ["1000000", "1", "2", "3", "4", "5", "99", "99"]
    _, problems = verify(topics.raw(topics.chain))
    assert problems == []
