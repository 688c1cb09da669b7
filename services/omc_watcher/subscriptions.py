"""Contract event subscriptions: what to follow, and how a log's arguments are decoded.

    [{"id": "demo-transfers",                 name recorded in ContractEventObserved
      "address": "0x…",                       contract emitting the logs
      "topics": ["0xddf2…", null, "0x…"],     eth_getLogs topic filter (optional; default: the
                                              event's signature hash when abi_event is given)
      "abi_event": "Transfer(address indexed from, address indexed to, uint256 value)",
                                              or a JSON ABI event fragment (optional)
      "from_block": 0}]                       first block of the backfill

With `abi_event`, a log whose first topic is the event's signature hash is decoded into
canonical JSON by parameter name (integers as decimal strings, addresses EIP-55, bytes as 0x
hex); an indexed dynamic value (string, bytes, array, tuple) is only its keccak hash, given as
0x hex. A log that does not decode is recorded without decoded_json.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import eth_abi
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

from omc_chain import abi
from omc_chain.errors import AbiError
from omc_errors import OmcError

_HASH32 = re.compile(r"0x[0-9a-f]{64}")
_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class SubscriptionInvalid(OmcError):
    """A configured subscription cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class EventAbi:
    """An event: its parameters with their `indexed` flags."""

    name: str
    params: tuple[abi.Param, ...]
    indexed: tuple[bool, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(p.type.canonical for p in self.params)})"

    @property
    def topic0(self) -> str:
        return "0x" + keccak(text=self.signature).hex()

    @functools.cached_property
    def _topic0(self) -> str:
        return self.topic0

    @functools.cached_property
    def _signature(self) -> str:
        return self.signature

    @functools.cached_property
    def _all_static(self) -> bool:
        return all(_word_kind(p.type) for p in self.params)

    def decode(self, topics: Sequence[str], data: str) -> str | None:
        """The log's arguments as canonical JSON, or None when it is not this event."""
        if not topics or topics[0] != self._topic0:
            return None
        if len(topics) - 1 != sum(self.indexed):
            return None
        if self._all_static:
            return self._decode_words(topics, data)
        return self._decode_abi(topics, data)

    def _decode_abi(self, topics: Sequence[str], data: str) -> str | None:
        """The general path, through eth_abi."""
        plain = [p for p, ix in zip(self.params, self.indexed, strict=True) if not ix]
        try:
            values = iter(eth_abi.decode([p.type.canonical for p in plain],
                                         bytes.fromhex(data[2:]), strict=False))
            topic_values = iter(topics[1:])
            decoded: dict[str, Any] = {}
            for i, (param, indexed) in enumerate(zip(self.params, self.indexed, strict=True)):
                name = param.name or f"arg{i}"
                if not indexed:
                    decoded[name] = abi.jsonable(param.type, next(values))
                elif _dynamic(param.type):
                    decoded[name] = next(topic_values)
                else:
                    raw = bytes.fromhex(next(topic_values)[2:])
                    (value,) = eth_abi.decode([param.type.canonical], raw)
                    decoded[name] = abi.jsonable(param.type, value)
        except (DecodingError, ValueError, TypeError, OverflowError, StopIteration):
            return None
        return abi.canonical_json(decoded)


    @functools.cached_property
    def _word_plan(self) -> tuple[list[tuple[str, bool, int, Callable[[str], str | None]]],
                                  int] | None:
        """For the fast path: per parameter in canonical-JSON key order (its JSON key, read
        from a topic?, which topic or data word, its word's JSON decoder), and the number of
        data words; None when names collide (the generic path then decides)."""
        names = [p.name or f"arg{i}" for i, p in enumerate(self.params)]
        if len(set(names)) != len(names):
            return None
        plan, topic_at, data_at = [], 1, 0
        for name, param, indexed in zip(names, self.params, self.indexed, strict=True):
            where = topic_at if indexed else data_at
            if indexed:
                topic_at += 1
            else:
                data_at += 1
            plan.append((json.dumps(name, ensure_ascii=False), indexed, where,
                         _word_json(param.type.base)))
        plan.sort(key=lambda step: json.loads(step[0]))
        return plan, data_at

    def _decode_words(self, topics: Sequence[str], data: str) -> str | None:
        """The fast path: every parameter is one 32-byte word (no arrays, tuples, strings or
        bytes), read straight from the hex into canonical JSON; the same values as eth_abi's,
        the same text as `abi.canonical_json`."""
        plan = self._word_plan
        if plan is None:
            return _canonical_words(self, topics, data)
        steps, words = plan
        if len(data) != 2 + 64 * words:
            return None
        parts = []
        for key, indexed, at, decode in steps:
            value = decode(topics[at][2:] if indexed else data[2 + 64 * at:66 + 64 * at])
            if value is None:
                return None
            parts.append(f"{key}:{value}")
        return "{" + ",".join(parts) + "}"


def _canonical_words(event: EventAbi, topics: Sequence[str], data: str) -> str | None:
    """`_decode_words` through a dict and `abi.canonical_json` (names that collide)."""
    words = len(event.params) - len(topics) + 1
    if len(data) != 2 + 64 * words:
        return None
    decoded: dict[str, Any] = {}
    topic_at, data_at = 1, 2
    for i, (param, indexed) in enumerate(zip(event.params, event.indexed, strict=True)):
        if indexed:
            word = topics[topic_at][2:]
            topic_at += 1
        else:
            word = data[data_at:data_at + 64]
            data_at += 64
        value = _word(param.type.base, word)
        if value is None:
            return None
        decoded[param.name or f"arg{i}"] = value
    return abi.canonical_json(decoded)


def _word_json(base: str) -> Callable[[str], str | None]:
    """A decoder of one word of type `base` straight to its canonical JSON text (every
    value `_word` gives is ASCII: a decimal or 0x string, or a boolean)."""
    if base == "bool":
        return lambda word: {0: "false", 1: "true"}.get(int(word, 16))
    if base == "address":
        return lambda word: (f'"{checksum("0x" + word[24:])}"' if int(word[:24], 16) == 0
                             else None)
    match = _INT.fullmatch(base)
    if match and match.group(1):  # uintN
        bits = int(match.group(2) or 256)

        def unsigned(word: str) -> str | None:
            value = int(word, 16)
            return f'"{value}"' if value >> bits == 0 else None

        return unsigned

    def decode(word: str) -> str | None:
        value = _word(base, word)
        return None if value is None else f'"{value}"'

    return decode


_INT = re.compile(r"(u?)int(\d*)")
_FIXED_BYTES = re.compile(r"bytes(\d+)")


def _word_kind(kind: abi.AbiType) -> bool:
    return not kind.dims and (kind.base in ("address", "bool") or bool(_INT.fullmatch(kind.base))
                              or bool(_FIXED_BYTES.fullmatch(kind.base)))


@functools.lru_cache(maxsize=65_536)
def checksum(address: str) -> str:
    """EIP-55 form of a 0x address (cached: the same few addresses recur in every log)."""
    return to_checksum_address(address)


def _word(base: str, word: str) -> Any:
    """One 32-byte ABI word (64 hex digits) of an elementary static type, as canonical JSON;
    None when the word is not a valid value of the type (strict, as eth_abi)."""
    value = int(word, 16)
    if base == "address":
        return checksum("0x" + word[24:]) if value >> 160 == 0 else None
    if base == "bool":
        return bool(value) if value in (0, 1) else None
    match = _INT.fullmatch(base)
    if match:
        bits = int(match.group(2) or 256)
        if match.group(1):
            return str(value) if value >> bits == 0 else None
        if value >> 255:
            value -= 1 << 256
        return str(value) if -(1 << (bits - 1)) <= value < 1 << (bits - 1) else None
    size = int(_FIXED_BYTES.fullmatch(base).group(1))  # type: ignore[union-attr]
    return "0x" + word[:2 * size] if int(word[2 * size:] or "0", 16) == 0 else None


def _dynamic(kind: abi.AbiType) -> bool:
    return bool(kind.dims) or kind.base in ("string", "bytes", "tuple")


def parse_event(spec: str | Mapping[str, Any]) -> EventAbi:
    """An event from text ("Transfer(address indexed from, …)", "event " optional) or a JSON
    ABI fragment ({"type": "event", "name", "inputs": [{"name", "type", "indexed"}]})."""
    try:
        if isinstance(spec, Mapping):
            if spec.get("type", "event") != "event":
                raise SubscriptionInvalid(f"abi_event is a {spec.get('type')!r}, not an event")
            inputs = list(spec.get("inputs") or [])
            fn = abi.parse_signature({"type": "function", "name": spec.get("name"),
                                      "inputs": [{k: v for k, v in item.items()
                                                  if k != "indexed"} for item in inputs]})
            indexed = tuple(bool(item.get("indexed")) for item in inputs)
            return EventAbi(fn.name, fn.inputs, indexed)
        text = spec.strip().removeprefix("event ").strip()
        open_at = text.find("(")
        inner = text[open_at + 1:text.rfind(")")] if open_at > 0 else ""
        parts = _top_level(inner)
        indexed = tuple(" indexed " in f" {part.strip()} " for part in parts)
        cleaned = ",".join(" ".join(w for w in part.split() if w != "indexed")
                           for part in parts)
        fn = abi.parse_signature(f"{text[:open_at]}({cleaned})")
        return EventAbi(fn.name, fn.inputs, indexed)
    except AbiError as error:
        raise SubscriptionInvalid(f"abi_event cannot be parsed: {error}") from None


def _top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        parts.append("".join(current))
    return parts


@dataclass(frozen=True, slots=True)
class Subscription:
    """One configured subscription."""

    id: str
    address: str
    topics: tuple[str | tuple[str, ...] | None, ...]
    from_block: int
    event: EventAbi | None = None

    def filter(self, from_block: int, to_block: int) -> dict[str, Any]:
        """The eth_getLogs filter over [from_block, to_block]."""
        query: dict[str, Any] = {"address": self.address, "fromBlock": hex(from_block),
                                 "toBlock": hex(to_block)}
        if self.topics:
            query["topics"] = [list(t) if isinstance(t, tuple) else t for t in self.topics]
        return query

    def decode(self, topics: Sequence[str], data: str) -> tuple[str | None, str | None]:
        """(event_signature, decoded_json) of a log; (None, None) without a matching ABI."""
        if self.event is None:
            return None, None
        decoded = self.event.decode(topics, data)
        return (self.event._signature, decoded) if decoded is not None else (None, None)


def parse_subscriptions(items: Any) -> tuple[Subscription, ...]:
    """Subscriptions from their JSON form; `SubscriptionInvalid` names the first bad one."""
    if not isinstance(items, list):
        raise SubscriptionInvalid("subscriptions must be a JSON list")
    found: list[Subscription] = []
    for n, item in enumerate(items):
        where = f"subscription #{n}"
        if not isinstance(item, Mapping):
            raise SubscriptionInvalid(f"{where} is not an object")
        sid = item.get("id")
        if not isinstance(sid, str) or not _ID.fullmatch(sid):
            raise SubscriptionInvalid(f"{where}: id must be 1-128 of A-Z a-z 0-9 . _ : -")
        where = f"subscription {sid!r}"
        if sid in {s.id for s in found}:
            raise SubscriptionInvalid(f"{where} is configured twice")
        try:
            address = to_checksum_address(abi.address(item.get("address"), "address"))
        except (AbiError, ValueError, TypeError):
            raise SubscriptionInvalid(f"{where}: address is not an EVM address") from None
        from_block = item.get("from_block", 0)
        if not isinstance(from_block, int) or isinstance(from_block, bool) or from_block < 0:
            raise SubscriptionInvalid(f"{where}: from_block must be an integer >= 0")
        event = None
        if item.get("abi_event") is not None:
            spec = item["abi_event"]
            if isinstance(spec, str) and spec.strip().startswith("{"):
                spec = json.loads(spec)
            event = parse_event(spec)
        topics = item.get("topics")
        if topics is None:
            topics = [event.topic0] if event else []
        found.append(Subscription(sid, address, _topics(topics, where), from_block, event))
    return tuple(found)


def _topics(topics: Any, where: str) -> tuple[str | tuple[str, ...] | None, ...]:
    if not isinstance(topics, list) or len(topics) > 4:
        raise SubscriptionInvalid(f"{where}: topics must be a list of at most 4 entries")
    out: list[str | tuple[str, ...] | None] = []
    for topic in topics:
        if topic is None:
            out.append(None)
        elif isinstance(topic, str) and _HASH32.fullmatch(topic.lower()):
            out.append(topic.lower())
        elif isinstance(topic, list) and all(isinstance(t, str) and _HASH32.fullmatch(t.lower())
                                             for t in topic):
            out.append(tuple(t.lower() for t in topic))
        else:
            raise SubscriptionInvalid(f"{where}: each topic is null, a 32-byte 0x hash or a "
                                      "list of them")
    return tuple(out)
