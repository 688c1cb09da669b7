"""The node, over raw JSON-RPC on HTTP (httpx), with batch requests: what the watcher reads.

    node = Node(url, batch=100, timeout=10.0)     # no I/O yet; `await node.close()` when done
    await node.chain_id()                         -> int
    await node.block_number()                     -> int
    await node.blocks([n, …])                     -> [Block …]   stops at the first missing one
    await node.receipts([tx_hash, …])             -> {tx_hash: Receipt | None}
    await node.logs([filter, …], decode=None)     -> [[Log …] …]   one list per filter; with
                                                  `decode(topics, data) -> (signature, json)`
                                                  each log carries its decoded arguments

Batches hold at most `batch` calls. The URL never appears in an error (it may hold an API
key): a node that cannot be reached, times out or answers with an error raises
`ChainUnavailable` (retryable) naming only the method.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from omc_chain.errors import ChainUnavailable
from omc_domain.chainview import Block, Log, Receipt
from omc_watcher.subscriptions import checksum

Decoder = Callable[[Sequence[str], str], tuple[str | None, str | None]]


class Node:
    def __init__(self, url: str, *, batch: int = 100, timeout: float = 10.0) -> None:
        self.url = url
        self.batch = batch
        self._client = httpx.AsyncClient(timeout=timeout,
                                         limits=httpx.Limits(max_connections=4))
        self._ids = itertools.count(1)

    async def close(self) -> None:
        await self._client.aclose()

    async def call(self, method: str, params: list[Any]) -> Any:
        (result,) = await self.calls([(method, params)])
        return result

    async def calls(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """The results of `calls`, in order, in batches of at most `batch`."""
        results: list[Any] = []
        for start in range(0, len(calls), self.batch):
            results += await self._batch(calls[start:start + self.batch])
        return results

    async def _batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        if not calls:
            return []
        requests = [{"jsonrpc": "2.0", "id": next(self._ids), "method": m, "params": p}
                    for m, p in calls]
        methods = sorted({m for m, _ in calls})
        try:
            response = await self._client.post(self.url, json=requests)
            response.raise_for_status()
            answers = response.json()
        except httpx.HTTPStatusError as error:
            raise ChainUnavailable(f"{', '.join(methods)}: the node answered HTTP "
                                   f"{error.response.status_code}") from None
        except (httpx.HTTPError, ValueError) as error:
            raise ChainUnavailable(f"{', '.join(methods)}: {type(error).__name__}") from None
        if isinstance(answers, dict):  # a node that refuses batches answers one error
            answers = [answers]
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        results = []
        for request in requests:
            answer = by_id.get(request["id"])
            if answer is None or "error" in answer:
                error = (answer or {}).get("error") or {"message": "no answer in the batch"}
                raise ChainUnavailable(f"{request['method']}: {error.get('message')}")
            results.append(answer.get("result"))
        return results

    async def chain_id(self) -> int:
        return int(await self.call("eth_chainId", []), 16)

    async def block_number(self) -> int:
        return int(await self.call("eth_blockNumber", []), 16)

    async def blocks(self, numbers: Sequence[int]) -> list[Block]:
        found = await self.calls([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        blocks = []
        for raw in found:
            if raw is None:
                break
            blocks.append(block_of(raw))
        return blocks

    async def receipts(self, tx_hashes: Sequence[str]) -> dict[str, Receipt | None]:
        found = await self.calls([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        return {h: None if raw is None else receipt_of(raw)
                for h, raw in zip(tx_hashes, found, strict=True)}

    async def logs(self, filters: Sequence[dict[str, Any]],
                   decode: Decoder | None = None) -> list[list[Log]]:
        found = await self.calls([("eth_getLogs", [f]) for f in filters])
        return [[log_of(raw, decode) for raw in entries if not raw.get("removed")]
                for entries in found]


def block_of(raw: dict[str, Any]) -> Block:
    base_fee = raw.get("baseFeePerGas")
    return Block(int(raw["number"], 16), raw["hash"].lower(), raw["parentHash"].lower(),
                 int(raw["timestamp"], 16), None if base_fee is None else int(base_fee, 16))


def receipt_of(raw: dict[str, Any]) -> Receipt:
    contract = raw.get("contractAddress")
    return Receipt(
        tx_hash=raw["transactionHash"].lower(), block_number=int(raw["blockNumber"], 16),
        block_hash=raw["blockHash"].lower(), transaction_index=int(raw["transactionIndex"], 16),
        gas_used=int(raw["gasUsed"], 16),
        effective_gas_price=int(raw.get("effectiveGasPrice") or "0x0", 16),
        status_ok=int(raw.get("status") or "0x0", 16) == 1,
        contract_address=checksum(contract.lower()) if contract else None)


def log_of(raw: dict[str, Any], decode: Decoder | None = None) -> Log:
    topics, data = tuple(t.lower() for t in raw["topics"]), raw["data"].lower()
    signature, decoded = decode(topics, data) if decode is not None else (None, None)
    return Log(
        address=checksum(raw["address"].lower()), topics=topics, data=data,
        block_number=int(raw["blockNumber"], 16), block_hash=raw["blockHash"].lower(),
        tx_hash=raw["transactionHash"].lower(),
        transaction_index=int(raw["transactionIndex"], 16), log_index=int(raw["logIndex"], 16),
        event_signature=signature, decoded_json=decoded)
