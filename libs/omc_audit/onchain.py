"""Asking the chain what AnchorRegistry holds.

    ChainRoots(url)(registry, stream_id, tree_size) -> "0x…" root (zeros: none), or None when
                                                       the chain cannot be asked
    ChainRoots(url).receipt(tx_hash) -> {status, block_number, block_hash} or None
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import Web3Exception

from omc_chain import abi
from omc_proofs.checkpoint import stream_key

ROOT_OF = "rootOf(bytes32,uint64)"


class ChainRoots:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.web3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        self._cache: dict[tuple[str, str, int], str] = {}
        self.reachable = True

    def __call__(self, registry: str, stream: str, tree_size: int) -> str | None:
        key = (registry.lower(), stream, tree_size)
        if key in self._cache:
            return self._cache[key]
        if not self.reachable:
            return None
        data = abi.encode_call(ROOT_OF, ["0x" + stream_key(stream).hex(), tree_size])
        try:
            out = self.web3.eth.call({"to": to_checksum_address(registry), "data": data})
        except (Web3Exception, OSError, ValueError):
            self.reachable = False
            return None
        root = "0x" + bytes(out)[-32:].rjust(32, b"\0").hex()
        self._cache[key] = root
        return root

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            receipt = self.web3.eth.get_transaction_receipt(tx_hash)
        except (Web3Exception, OSError, ValueError):
            return None
        return {"status": int(receipt["status"]), "block_number": int(receipt["blockNumber"]),
                "block_hash": "0x" + bytes(receipt["blockHash"]).hex().removeprefix("0x")}
