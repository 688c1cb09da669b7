"""The tx manager's throughput, against baselines measured in the same run.

    .venv/bin/python -m bench.txmanager [--sign 20000] [--txs 1000]

signing    LocalKeySigner.sign_transaction (coincurve, our EIP-1559 encoding) on one core,
           against eth-account's Account.sign_transaction of the same transactions.
           Target: >= 2,000 signatures/s.
submission N transfers through the service (TxRequested on a fresh Kafka topic -> fold ->
           nonce -> sign -> TxSigned acknowledged -> eth_sendRawTransaction -> TxBroadcast
           acknowledged -> offsets committed), N requests waiting on the topic, from the first
           step to the last TxBroadcast recorded, against broadcasting N transactions
           pre-signed the same way straight to the node over one keep-alive connection: one
           eth_sendRawTransaction per HTTP request, and in JSON-RPC batches of 500 (measured
           just before and just after the service; their mean time is the baseline). The
           service sends its signed transactions in JSON-RPC batches of 100 from a sender
           thread while it signs the next ones. All on a private anvil that mines every
           transaction at once (so the shared one is not flooded), one account each, gas
           limits given (no estimate calls). Target: the service at >= 50% of the baseline;
           the median ratio of the rounds is reported.

Needs the local stack (Kafka, the registry, the anvil binary): `omc stack up`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic
from eth_account import Account

from omc_chain.signer import LocalKeySigner, Signers
from omc_config import Settings
from omc_txmanager.manager import Limits
from omc_txmanager.rpc import Rpc, endpoints_from
from tests.support.txmanager import GWEI, PrivateAnvil, TxLog

BOB = "0x000000000000000000000000000000000000bEEF"


def transfer(nonce: int) -> dict:
    return {"type": 2, "chainId": 31337, "nonce": nonce, "gas": 21000, "to": BOB, "value": 1,
            "maxFeePerGas": 20 * GWEI, "maxPriorityFeePerGas": GWEI, "data": "0x"}


def signing(count: int) -> tuple[float, float]:
    account = Account.create()
    signer = LocalKeySigner(bytes(account.key))
    started = time.perf_counter()
    for nonce in range(count):
        signer.sign_transaction(transfer(nonce))
    ours = count / (time.perf_counter() - started)
    baseline_count = max(count // 4, 1)
    started = time.perf_counter()
    for nonce in range(baseline_count):
        account.sign_transaction(transfer(nonce))
    return ours, baseline_count / (time.perf_counter() - started)


def direct(anvil: PrivateAnvil, count: int, batch: int = 0) -> float:
    """Pre-signed transactions straight to the node: one eth_sendRawTransaction per HTTP
    request, or (`batch` > 0) JSON-RPC batches of `batch` transactions."""
    account = Account.create()
    anvil.call("anvil_setBalance", account.address, hex(10**21))
    signer = LocalKeySigner(bytes(account.key))
    raws = [signer.sign_transaction(transfer(n))[0] for n in range(count)]
    rpc = Rpc(endpoints_from(anvil.url))
    started = time.perf_counter()
    if batch:
        for start in range(0, count, batch):
            rpc.send_raw_many(raws[start:start + batch])
    else:
        for raw in raws:
            rpc.send_raw(raw)
    elapsed = time.perf_counter() - started
    rpc.close()
    assert mined(anvil, account.address, count)
    return count / elapsed


def mined(anvil: PrivateAnvil, address: str, count: int, timeout: float = 120.0) -> bool:
    """Whether all `count` transactions of `address` are mined (waiting up to `timeout`)."""
    deadline = time.monotonic() + timeout
    while int(anvil.call("eth_getTransactionCount", address, "latest"), 16) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Topics:
    """fresh_topic for a script: created here, deleted at the end."""

    def __init__(self, settings: Settings) -> None:
        self.admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        self.created: list[str] = []

    def __call__(self, partitions: int = 1) -> str:
        name = f"omc.bench.{uuid.uuid4().hex[:12]}"
        self.admin.create_topics([NewTopic(name, num_partitions=partitions,
                                           replication_factor=1)])[name].result(30)
        self.created.append(name)
        return name

    def delete(self) -> None:
        for future in self.admin.delete_topics(self.created).values():
            future.result(30)


def through_service(settings: Settings, anvil: PrivateAnvil, count: int) -> float:
    topics = Topics(settings)
    txlog = TxLog(settings, topics, partitions=1)
    try:
        account = Account.create()
        anvil.call("anvil_setBalance", account.address, hex(10**21))
        manager = txlog.manager(Signers([LocalKeySigner(bytes(account.key))]),
                                rpc_urls=anvil.url, limits=Limits(tick_seconds=1.0))
        while not manager.ready():  # joined the group, assigned, caught up (empty topic)
            manager.step()
        for n in range(count):  # a backlog, written before the clock starts (a requester
            txlog.request(account.address, BOB, 1, n=n, gas_limit=21000, cap=20 * GWEI,
                          flush=False)  # is another process; here it would share the GIL)
        txlog.producer.flush()
        started = time.perf_counter()
        while manager.counts["broadcast"] < count:
            manager.step()
        elapsed = time.perf_counter() - started
        assert mined(anvil, account.address, count)
        txlog.close()
        return count / elapsed
    finally:
        topics.delete()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sign", type=int, default=20_000)
    parser.add_argument("--txs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = Settings.from_env()
    print(f"python {platform.python_version()}, {os.cpu_count()} cpu(s), load average "
          f"{os.getloadavg()[0]:.1f} at start")

    ours, theirs = signing(args.sign)
    print(f"signing: {ours:,.0f}/s (eth-account {theirs:,.0f}/s, {ours / theirs:.1f}x); "
          f"target >= 2,000/s: {'met' if ours >= 2000 else 'NOT met'}")

    anvil = PrivateAnvil(settings, automine=True)
    ratios: list[tuple[float, float]] = []
    try:
        through_service(settings, anvil, 100)  # warm-up, not reported: first-use costs
        direct(anvil, 100, batch=100)          # (schemas parsed, registry ids, connections)
        for round_ in range(1, args.rounds + 1):
            # the baselines just before and just after the service, so that a change of the
            # machine's load during the round weighs on both sides
            one_by_one = direct(anvil, args.txs)
            before = direct(anvil, args.txs, batch=500)
            service = through_service(settings, anvil, args.txs)
            after = direct(anvil, args.txs, batch=500)
            batched = 2 / (1 / before + 1 / after)  # the rate of their mean time
            ratios.append((service / one_by_one, service / batched))
            print(f"submission round {round_}: service {service:,.0f} txs/s; direct "
                  f"{one_by_one:,.0f} txs/s one request each ({100 * service / one_by_one:.0f}%)"
                  f", {batched:,.0f} txs/s in batches of 500 (before {before:,.0f}, after "
                  f"{after:,.0f}) ({100 * service / batched:.0f}%); target >= 50%; load "
                  f"average {os.getloadavg()[0]:.1f}")
    finally:
        anvil.stop()
    print(f"median of {len(ratios)} rounds: {100 * statistics.median(r[0] for r in ratios):.0f}% "
          f"of one request per transaction, {100 * statistics.median(r[1] for r in ratios):.0f}%"
          " of batches of 500")


if __name__ == "__main__":
    main()
