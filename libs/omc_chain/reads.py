"""Reads from a chain through web3.py, each at one explicit block, as recordable results.

    reader = ChainReader.from_url("http://127.0.0.1:18545", timeout=10.0)   # no I/O yet
    async with reader:                                       # or: await reader.close()
        await reader.get_balance(address, block=None)        -> ReadResult
        await reader.erc20_balance(token, holder, block=None)
        await reader.contract_read(address, signature, args, block=None)
        await reader.read_action(action, block=None)         # a CONTRACT_READ Action's calldata

`block=None` means: fetch the head once, then read everything at that number, so a result
(and the parts of one result) always names the block it is true at. A `ReadResult` is what a
ToolResultRecorded records: `ok`, `result_json` (canonical JSON: integers as decimal strings,
addresses EIP-55, bytes 0x hex) and `block_number`.

    get_balance    {"address", "balance_wei"}
    erc20_balance  {"token", "holder", "balance", "decimals", "symbol", "name"}; decimals,
                   symbol and name are null when the token does not answer them. symbol and
                   name are untrusted text chosen by whoever deployed the token: control
                   characters are dropped and they are cut to 64 characters; never act on them.
    contract_read  {"address", "function", "outputs": [...]} with the signature's outputs
                   decoded, or {"address", "function", "raw": "0x…"} when it declares none.

A revert is a result, not an error: ok=False and result_json {"reverted": true, "reason",
"data"} (reason decoded from Error(string) or Panic(uint256), else "custom error 0x…" or
"no reason"). Return data that does not decode (e.g. an address without code) is ok=False
with {"error", "data"}. The node being unreachable, slow or answering with an error that is
not a revert raises `ChainUnavailable` (retryable). Bad arguments raise `AbiError`.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, Web3Exception
from web3.providers.rpc import AsyncHTTPProvider

from omc_chain import abi
from omc_chain.errors import AbiError, ChainUnavailable
from omc_events.records import Action, ActionKind

UNTRUSTED_TEXT_LIMIT = 64
_ERROR_STRING = "0x08c379a0"
_PANIC = "0x4e487b71"
_DECIMALS = abi.parse_signature("decimals()(uint8)")
_SYMBOL = abi.parse_signature("symbol()(string)")
_NAME = abi.parse_signature("name()(string)")
_BALANCE_OF = abi.parse_signature("balanceOf(address)(uint256)")


@dataclass(frozen=True, slots=True)
class ReadResult:
    """A read's outcome at `block_number`, ready to be recorded."""

    ok: bool
    result_json: str
    block_number: int


@dataclass(frozen=True, slots=True)
class _Call:
    ok: bool
    data: bytes           # return data when ok, revert data when not
    reason: str = ""


class ChainReader:
    """Reads through one AsyncWeb3 over HTTP. Build with `from_url`; close when done."""

    def __init__(self, web3: AsyncWeb3, url: str) -> None:
        self.web3 = web3
        self.url = _redacted(url)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 10.0) -> ChainReader:
        """A reader of the node at `url`; each request gives up after `timeout` seconds.
        web3's own retries are off: a failure surfaces as `ChainUnavailable` at once."""
        provider = AsyncHTTPProvider(
            url, request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout)},
            exception_retry_configuration=None)
        return cls(AsyncWeb3(provider), url)

    async def close(self) -> None:
        await self.web3.provider.disconnect()

    async def __aenter__(self) -> ChainReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the node ----------------------------------------------------------------------------

    async def chain_id(self) -> int:
        return await self._node("eth_chainId", self.web3.eth.chain_id)

    async def head(self) -> int:
        """The number of the latest block."""
        return await self._node("eth_blockNumber", self.web3.eth.block_number)

    async def _block(self, block: int | None) -> int:
        if block is None:
            return await self.head()
        if isinstance(block, bool) or not isinstance(block, int) or block < 0:
            raise AbiError(f"a block number must be a non-negative integer, got {block!r}")
        return block

    async def _node(self, what: str, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (aiohttp.ClientError, TimeoutError, OSError, Web3Exception) as error:
            raise ChainUnavailable(f"the chain node at {self.url} failed on {what}: "
                                   f"{type(error).__name__}: {error}") from None

    async def _call(self, to: str, data: str, block: int) -> _Call:
        try:
            output = await self.web3.eth.call({"to": to, "data": data}, block_identifier=block)
        except ContractLogicError as error:
            revert = _revert_bytes(error.data)
            return _Call(False, revert, _reason(revert))
        except (aiohttp.ClientError, TimeoutError, OSError, Web3Exception) as error:
            raise ChainUnavailable(f"the chain node at {self.url} failed on eth_call: "
                                   f"{type(error).__name__}: {error}") from None
        return _Call(True, bytes(output))

    # -- reads -------------------------------------------------------------------------------

    async def get_balance(self, address: str, block: int | None = None) -> ReadResult:
        """The native balance of `address`, in wei."""
        holder = abi.address(address)
        number = await self._block(block)
        balance = await self._node("eth_getBalance",
                                   self.web3.eth.get_balance(holder, block_identifier=number))
        return _ok({"address": holder, "balance_wei": str(int(balance))}, number)

    async def erc20_balance(self, token: str, holder: str, block: int | None = None) -> ReadResult:
        """`holder`'s balance of `token` in base units, with decimals, symbol and name."""
        token, holder = abi.address(token, "token"), abi.address(holder, "holder")
        number = await self._block(block)
        balance, decimals, symbol, name = await asyncio.gather(
            self._call(token, abi.encode_call(_BALANCE_OF, [holder]), number),
            self._call(token, _DECIMALS.selector, number),
            self._call(token, _SYMBOL.selector, number),
            self._call(token, _NAME.selector, number))
        if not balance.ok:
            return _reverted(balance, number)
        try:
            (amount,) = abi.decode_result(_BALANCE_OF, balance.data)
        except AbiError:
            return _undecodable(token, "balanceOf(address)", balance.data, number)
        return _ok({"token": token, "holder": holder, "balance": amount,
                    "decimals": _optional(decimals, _DECIMALS),
                    "symbol": _text(symbol), "name": _text(name)}, number)

    async def contract_read(self, address: str, signature: str | Mapping[str, Any],
                            args: Sequence[Any] | Mapping[str, Any] = (),
                            block: int | None = None) -> ReadResult:
        """eth_call of `signature` with `args` on `address`, decoded by the signature's outputs."""
        fn = abi.parse_signature(signature)
        return await self._read(abi.address(address), fn, abi.encode_call(fn, args), block)

    async def read_action(self, action: Action, block: int | None = None) -> ReadResult:
        """Run a CONTRACT_READ Action: exactly its calldata, decoded by its signature."""
        if action.kind != ActionKind.CONTRACT_READ:
            raise AbiError(f"{action.kind} is not a read; only CONTRACT_READ actions are read")
        fn = abi.parse_signature(action.function_signature or "")
        if not action.data.startswith(fn.selector):
            raise AbiError("the action's calldata does not match its function signature")
        return await self._read(abi.address(action.to), fn, action.data, block)

    async def _read(self, to: str, fn: abi.Function, data: str, block: int | None) -> ReadResult:
        number = await self._block(block)
        call = await self._call(to, data, number)
        if not call.ok:
            return _reverted(call, number)
        if not fn.outputs:
            return _ok({"address": to, "function": fn.canonical, "raw": "0x" + call.data.hex()},
                       number)
        try:
            outputs = abi.decode_result(fn, call.data)
        except AbiError:
            return _undecodable(to, fn.canonical, call.data, number)
        return _ok({"address": to, "function": fn.canonical, "outputs": outputs}, number)


def _redacted(url: str) -> str:
    """scheme://host:port only: RPC URLs often carry an API key in their path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


# -- results ----------------------------------------------------------------------------------


def _ok(value: Mapping[str, Any], block: int) -> ReadResult:
    return ReadResult(True, abi.canonical_json(value), block)


def _reverted(call: _Call, block: int) -> ReadResult:
    return ReadResult(False, abi.canonical_json(
        {"reverted": True, "reason": call.reason, "data": "0x" + call.data.hex()}), block)


def _undecodable(to: str, function: str, data: bytes, block: int) -> ReadResult:
    why = ("no return data: the address has no code or no such function" if not data
           else "the return data does not match the declared outputs")
    return ReadResult(False, abi.canonical_json(
        {"address": to, "function": function, "error": why, "data": "0x" + data.hex()}), block)


def _optional(call: _Call, fn: abi.Function) -> Any:
    if not call.ok:
        return None
    try:
        return abi.decode_result(fn, call.data)[0]
    except AbiError:
        return None


def _text(call: _Call) -> str | None:
    """A token's symbol or name: untrusted; a string, or bytes32 as old tokens return it."""
    if not call.ok:
        return None
    try:
        (text,) = abi.decode_result(["string"], call.data)
    except AbiError:
        if len(call.data) != 32:
            return None
        text = call.data.rstrip(b"\0").decode("utf-8", errors="replace")
    clean = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    return clean[:UNTRUSTED_TEXT_LIMIT]


def _revert_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


def _reason(data: bytes) -> str:
    head = "0x" + data[:4].hex()
    try:
        if head == _ERROR_STRING:
            (message,) = abi.decode_result(["string"], data[4:])
            return "".join(c for c in message if unicodedata.category(c)[0] != "C")[:256]
        if head == _PANIC:
            (code,) = abi.decode_result(["uint256"], data[4:])
            return f"panic 0x{int(code):02x}"
    except AbiError:
        return f"undecodable revert data {head}"
    return f"custom error {head}" if len(data) >= 4 else "no reason"
