"""JSON-RPC to the chain's nodes: several endpoints with failover, node errors typed.

    Rpc(endpoints).call(method, params)     the result, or a typed error below
    endpoints_from("https://a…,https://b…") Endpoint(name=host[:port], url) for each URL

An endpoint is named by its host (and port) only: names go into events (TxBroadcast's
rpc_endpoint) and logs; URLs never do, since they may carry credentials in their path,
query or user part. Transport failures (connection refused, timeouts, HTTP 5xx, an answer
that is not JSON-RPC) move to the next endpoint; after every endpoint failed, the round is
retried with exponential backoff, then `ChainUnavailable` is raised (retryable).

A node's JSON-RPC error answer is not a transport failure: it is classified by its message
(geth, anvil, reth, erigon and nethermind wordings) and raised as a `NodeRefused` subclass:

    NodeRefused            a node answered with an error (the node's message kept, no URL)
    ├── AlreadyKnown       "already known", "known transaction"   (the pool has it: success)
    ├── NonceTooLow        "nonce too low", "nonce has already been used"
    ├── Underpriced        "replacement transaction underpriced", "transaction underpriced",
    │                      "max fee per gas less than block base fee", "fee cap too low"
    ├── InsufficientFunds  "insufficient funds", "insufficient balance"
    ├── ExecutionReverted  "execution reverted", "revert"  (eth_estimateGas, eth_call)
    └── Rejected           any other error answer
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from omc_chain.errors import ChainError, ChainUnavailable

log = logging.getLogger("omc_txmanager.rpc")


class NodeRefused(ChainError):
    """A node answered a JSON-RPC call with an error."""

    def __init__(self, method: str, code: int, message: str, endpoint: str) -> None:
        self.method, self.code, self.node_message, self.endpoint = method, code, message, endpoint
        super().__init__(f"{endpoint} refused {method}: {message} (code {code})")


class AlreadyKnown(NodeRefused):
    """The node already holds this transaction."""


class NonceTooLow(NodeRefused):
    """The nonce was already used by a mined transaction."""


class Underpriced(NodeRefused):
    """The fees are too low: below the base fee, or not 10% above the one replaced."""


class InsufficientFunds(NodeRefused):
    """The sender cannot pay value plus gas times max fee."""


class ExecutionReverted(NodeRefused):
    """The call reverted (at gas estimation)."""


class Rejected(NodeRefused):
    """Any other refusal."""


_WORDINGS: tuple[tuple[type[NodeRefused], tuple[str, ...]], ...] = (
    (AlreadyKnown, ("already known", "known transaction", "alreadyknown", "already imported",
                    "transaction already exists", "already in the pool")),
    (NonceTooLow, ("nonce too low", "nonce has already been used", "oldnonce",
                   "nonce is too low")),
    (Underpriced, ("underpriced", "less than block base fee", "fee cap too low",
                   "feecap too low", "max fee per gas less than", "fee too low")),
    (InsufficientFunds, ("insufficient funds", "insufficient balance")),
    (ExecutionReverted, ("execution reverted", "revert")),
)


def classify(message: str) -> type[NodeRefused]:
    """The error class for a node's error message."""
    lowered = message.lower()
    for kind, wordings in _WORDINGS:
        if any(w in lowered for w in wordings):
            return kind
    return Rejected


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # host[:port]: safe to record
    url: str   # never logged, never recorded

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r})"


def endpoints_from(urls: str | Sequence[str]) -> list[Endpoint]:
    """Endpoints named by host[:port] ("#2", "#3" appended to repeated names)."""
    items = [u.strip() for u in (urls.split(",") if isinstance(urls, str) else urls)]
    found: list[Endpoint] = []
    seen: dict[str, int] = {}
    for url in filter(None, items):
        parts = urlsplit(url)
        name = parts.hostname or "node"
        if parts.port:
            name = f"{name}:{parts.port}"
        seen[name] = seen.get(name, 0) + 1
        found.append(Endpoint(name if seen[name] == 1 else f"{name}#{seen[name]}", url))
    return found


class _Transport(Exception):
    """One endpoint failed to answer usefully (internal: triggers failover)."""


class Rpc:
    """Calls the first endpoint that answers; sticks with it until it fails."""

    def __init__(self, endpoints: Sequence[Endpoint], *, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 0.25, max_backoff: float = 5.0,
                 client: httpx.Client | None = None) -> None:
        if not endpoints:
            raise ValueError("at least one RPC endpoint is needed")
        self.endpoints = list(endpoints)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.client = client or httpx.Client(timeout=timeout)
        self.current = 0
        self._ids = 0
        self.failovers = 0

    @property
    def endpoint(self) -> Endpoint:
        return self.endpoints[self.current]

    def call(self, method: str, params: list[Any]) -> Any:
        """The result of `method`; `NodeRefused` subclasses, or `ChainUnavailable`."""
        return self._failover(method, lambda endpoint: self._once(endpoint, method, params))

    def call_many(self, method: str, params: Sequence[list[Any]]) -> list[Any]:
        """`method` once per params list, in ONE JSON-RPC batch request: for each, its result
        or the `NodeRefused` it was refused with (returned, not raised), in order. A
        transport failure fails the whole batch over to the next endpoint."""
        if not params:
            return []

        def once(endpoint: Endpoint) -> list[Any]:
            first = self._ids + 1
            self._ids += len(params)
            answers = self._post(endpoint, [
                {"jsonrpc": "2.0", "id": first + i, "method": method, "params": p}
                for i, p in enumerate(params)])
            if not isinstance(answers, list):
                raise _Transport("not a JSON-RPC batch answer")
            by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
            found: list[Any] = []
            for i in range(len(params)):
                try:
                    found.append(self._result(endpoint, method, by_id.get(first + i)))
                except NodeRefused as refused:
                    found.append(refused)
            return found

        return self._failover(method, once)

    def _failover(self, method: str, attempt: Callable[[Endpoint], Any]) -> Any:
        delay = self.backoff
        problems: list[str] = []
        for round_ in range(self.retries + 1):
            for _ in range(len(self.endpoints)):
                endpoint = self.endpoint
                try:
                    return attempt(endpoint)
                except _Transport as problem:
                    problems.append(f"{endpoint.name}: {problem}")
                    log.warning("rpc %s on %s failed (%s); trying the next endpoint", method,
                                endpoint.name, problem)
                    self.current = (self.current + 1) % len(self.endpoints)
                    self.failovers += 1
            if round_ < self.retries:
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        raise ChainUnavailable(f"no RPC endpoint answered {method} after {self.retries + 1} "
                               f"round(s): {'; '.join(problems[-len(self.endpoints):])}")

    def _post(self, endpoint: Endpoint, payload: Any) -> Any:
        try:
            response = self.client.post(endpoint.url, json=payload)
        except httpx.HTTPError as error:  # its text may hold the URL: keep only the kind
            raise _Transport(type(error).__name__) from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise _Transport(f"HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise _Transport(f"HTTP {response.status_code}, not JSON") from None

    def _once(self, endpoint: Endpoint, method: str, params: list[Any]) -> Any:
        self._ids += 1
        answer = self._post(endpoint, {"jsonrpc": "2.0", "id": self._ids, "method": method,
                                       "params": params})
        return self._result(endpoint, method, answer)

    def _result(self, endpoint: Endpoint, method: str, answer: Any) -> Any:
        if not isinstance(answer, dict):
            raise _Transport("not a JSON-RPC answer")
        error = answer.get("error")
        if error is not None:
            message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
            code = int(error.get("code", 0)) if isinstance(error, dict) else 0
            data = error.get("data") if isinstance(error, dict) else None
            if isinstance(data, str) and data and "revert" in message.lower():
                message = f"{message} ({data})"
            raise classify(message)(method, code, message[:500], endpoint.name)
        if "result" not in answer:
            raise _Transport("no result in the answer")
        return answer["result"]

    # -- the calls the tx manager makes ------------------------------------------------------

    def chain_id(self) -> int:
        return int(self.call("eth_chainId", []), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber", []), 16)

    def nonce(self, address: str, block: str) -> int:
        return int(self.call("eth_getTransactionCount", [address, block]), 16)

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        return int(self.call("eth_estimateGas", [tx]), 16)

    def fee_history(self, blocks: int, percentile: int) -> dict[str, Any]:
        return self.call("eth_feeHistory", [hex(blocks), "latest", [percentile]])

    def max_priority_fee(self) -> int:
        return int(self.call("eth_maxPriorityFeePerGas", []), 16)

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        return self.call("eth_getTransactionByHash", [tx_hash])

    def send_raw(self, raw_tx: str) -> tuple[str, bool]:
        """(endpoint name, already_known). Raises the `NodeRefused` subclasses but
        `AlreadyKnown`, which is success."""
        try:
            self.call("eth_sendRawTransaction", [raw_tx])
        except AlreadyKnown as known:
            return known.endpoint, True
        return self.endpoint.name, False

    def send_raw_many(self, raw_txs: Sequence[str]) -> list[tuple[str, bool] | NodeRefused]:
        """`send_raw` of each, in one batch request: (endpoint name, already_known) or the
        refusal, in order. Raises `ChainUnavailable` only."""
        results = self.call_many("eth_sendRawTransaction", [[raw] for raw in raw_txs])
        name = self.endpoint.name  # the endpoint that answered (after any failover)
        return [(name, True) if isinstance(r, AlreadyKnown)
                else r if isinstance(r, NodeRefused) else (name, False) for r in results]

    def twin(self) -> Rpc:
        """An Rpc over the same endpoints and settings with a connection of its own (one Rpc
        is not for two threads at once)."""
        return Rpc(self.endpoints, timeout=self.timeout, retries=self.retries,
                   backoff=self.backoff, max_backoff=self.max_backoff)

    def close(self) -> None:
        self.client.close()
