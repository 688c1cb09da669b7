"""Chain watcher backfill: blocks/s and logs/s into Kafka, against raw batched JSON-RPC over
the same range of the same anvil, measured in the same run.

    .venv/bin/python -m bench.watcher [--log-blocks 500] [--per-block 10] [--empty 4500]

A private anvil (automine off) gets a DemoToken and `log-blocks` blocks of `per-block` ERC-20
transfers each (one Transfer log per transfer), then `empty` empty blocks.

blocks   The watcher, stopped before the history was made, restarts (its window rebuilt from
         the fresh chain topic) and catches up: batched eth_getBlockByNumber (100 a batch,
         500 a slice), reorg detection, one sealed BlockObserved per block produced and
         acknowledged. Baseline: the same blocks fetched with raw batched
         eth_getBlockByNumber (httpx, 100 a batch, JSON parsed), nothing else.
logs     A subscription to the token's Transfer events (ABI given, so every log is decoded)
         backfills the whole range: eth_getLogs in chunks of 2,000 blocks, 16 chunks per batch
         request, one sealed ContractEventObserved per log produced and acknowledged.
         Baseline: raw batched eth_getLogs over the same chunks (httpx, JSON parsed).

Each side runs `--rounds` times (fresh topics for the watcher each round); the best round of
each is reported. Target: the watcher at least 50% of the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
import uuid

import httpx
from confluent_kafka.admin import AdminClient, NewTopic
from eth_account import Account

from omc_chain import abi
from omc_config import Settings
from omc_watcher.watcher import CHUNKS_PER_BATCH
from tests.integration.test_watcher import (
    CHAIN_ID,
    TRANSFER,
    deploy_token,
    fresh_topics,
    private_anvil,
)

RPC_BATCH = 100
LOG_CHUNK = 2000


def make_history(chain, log_blocks: int, per_block: int, empty: int) -> tuple[str, int, int]:
    """(token, first block, last block) after the token's deployment."""
    owner = chain.funded()
    token = deploy_token(chain, owner)
    first = chain.head() + 1
    chain.rpc("anvil_setAutomine", [False])
    nonce = chain.web3.eth.get_transaction_count(owner.address)
    fee = 4 * chain.web3.eth.get_block("latest")["baseFeePerGas"] + 10**9
    mint = abi.encode_call("mint(address,uint256)", [owner.address, 10**24])
    recipients = [Account.create().address for _ in range(16)]
    with httpx.Client(timeout=60) as client:
        for b in range(log_blocks):
            batch = []
            for i in range(per_block):
                data = mint if b == 0 and i == 0 else abi.encode_call(
                    "transfer(address,uint256)", [recipients[i % 16], b * per_block + i])
                signed = owner.sign_transaction({
                    "type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": token, "value": 0,
                    "data": data, "gas": 120_000, "maxPriorityFeePerGas": 10**9,
                    "maxFeePerGas": fee})
                nonce += 1
                batch.append({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction",
                              "params": ["0x" + signed.raw_transaction.hex().removeprefix("0x")]})
            answers = client.post(chain.url, json=batch).json()
            bad = [a for a in answers if "error" in a]
            assert not bad, bad[:1]
            chain.rpc("evm_mine")
    chain.rpc("anvil_setAutomine", [True])
    for at in range(0, empty, 250):
        chain.mine(min(250, empty - at))
    return token, first, chain.head()


def raw_blocks(url: str, first: int, last: int) -> float:
    numbers = list(range(first, last + 1))
    started = time.perf_counter()
    with httpx.Client(timeout=60) as client:
        for at in range(0, len(numbers), RPC_BATCH):
            batch = [{"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber",
                      "params": [hex(n), False]} for n in numbers[at:at + RPC_BATCH]]
            answers = client.post(url, json=batch).json()
            assert all(a.get("result") for a in answers)
    return time.perf_counter() - started


def raw_logs(url: str, token: str, first: int, last: int) -> tuple[float, int]:
    ranges = [(a, min(a + LOG_CHUNK - 1, last)) for a in range(first, last + 1, LOG_CHUNK)]
    started = time.perf_counter()
    count = 0
    with httpx.Client(timeout=60) as client:
        for at in range(0, len(ranges), CHUNKS_PER_BATCH):
            batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_getLogs",
                      "params": [{"address": token, "fromBlock": hex(a), "toBlock": hex(b)}]}
                     for i, (a, b) in enumerate(ranges[at:at + CHUNKS_PER_BATCH])]
            for answer in client.post(url, json=batch).json():
                count += len(answer["result"])
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log-blocks", type=int, default=500)
    parser.add_argument("--per-block", type=int, default=10)
    parser.add_argument("--empty", type=int, default=4500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings.from_env()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    made: list[str] = []

    def fresh_topic(partitions: int = 1) -> str:
        name = f"omc.bench.watcher.{uuid.uuid4().hex[:12]}"
        admin.create_topics([NewTopic(name, num_partitions=partitions,
                                      replication_factor=1)])[name].result(30)
        made.append(name)
        return name

    try:
        with private_anvil(settings) as chain:
            print(f"python {platform.python_version()}, {os.cpu_count()} cpus; making history")
            made_at = time.perf_counter()
            before = chain.head()
            token, first, last = make_history(chain, args.log_blocks, args.per_block,
                                              args.empty)
            blocks = last - before
            print(f"history: blocks {before + 1}..{last} ({blocks}), logs from {first}, "
                  f"made in {time.perf_counter() - made_at:.1f}s")
            sub = json.dumps([{"id": "bench", "address": token, "abi_event": TRANSFER,
                               "from_block": first}])
            best = {"raw_blocks": 1e9, "watch_blocks": 1e9, "raw_logs": 1e9,
                    "watch_logs": 1e9}
            logs = 0
            for round_ in range(1, args.rounds + 1):
                best["raw_blocks"] = min(best["raw_blocks"],
                                         raw_blocks(chain.url, before + 1, last))
                elapsed, logs = raw_logs(chain.url, token, first, last)
                best["raw_logs"] = min(best["raw_logs"], elapsed)

                topics = fresh_topics(settings, fresh_topic)
                window = str(blocks + 16)
                seed = topics.watcher(chain, OMC_WATCHER_WINDOW=window)
                asyncio.run(_seed(seed, before))
                watcher = topics.watcher(chain, OMC_WATCHER_WINDOW=window)
                best["watch_blocks"] = min(best["watch_blocks"], asyncio.run(_timed(watcher)))
                assert watcher.counters.blocks == blocks, watcher.counters
                watcher = topics.watcher(chain, OMC_WATCHER_WINDOW=window,
                                         OMC_WATCHER_SUBSCRIPTIONS=sub,
                                         OMC_WATCHER_LOG_CHUNK=str(LOG_CHUNK))
                best["watch_logs"] = min(best["watch_logs"], asyncio.run(_timed(watcher)))
                assert watcher.counters.logs == logs, (watcher.counters, logs)
                print(f"round {round_}: " + ", ".join(f"{k} {v:.3f}s"
                                                     for k, v in best.items()))
    finally:
        if made:
            for future in admin.delete_topics(made).values():
                future.result(30)
    span = last - first + 1
    print(f"\nblocks: watcher {blocks / best['watch_blocks']:,.0f} blocks/s "
          f"(BlockObserved written), raw batched eth_getBlockByNumber "
          f"{blocks / best['raw_blocks']:,.0f} blocks/s -> "
          f"{best['raw_blocks'] / best['watch_blocks']:.0%}")
    print(f"logs:   watcher {logs / best['watch_logs']:,.0f} logs/s, "
          f"{span / best['watch_logs']:,.0f} blocks/s (ContractEventObserved written); raw "
          f"batched eth_getLogs {logs / best['raw_logs']:,.0f} logs/s, "
          f"{span / best['raw_logs']:,.0f} blocks/s -> "
          f"{best['raw_logs'] / best['watch_logs']:.0%}")


async def _seed(watcher, number: int) -> None:
    """Record block `number` as the head, as a watcher stopped there would have."""
    await watcher.start()
    try:
        await watcher._advance(number)
    finally:
        await watcher.close()


async def _timed(watcher) -> float:
    await watcher.start()
    try:
        started = time.perf_counter()
        await watcher.step()
        return time.perf_counter() - started
    finally:
        await watcher.close()


if __name__ == "__main__":
    main()
