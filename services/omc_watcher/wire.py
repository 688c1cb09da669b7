"""The Avro binary bytes of the watcher's two bulk records, written directly.

    wire = Wire(schemas)
    parts = wire.parts(emit, occurred_at, actor, event_id, sequence, prev_hash)
        # (the envelope's bytes up to prev_hash, the record's other fields), or None: not a
        # bulk record type, or this build's schema no longer matches

`envelope + b"\x00" + rest` (the empty string is meta.hash, last field of the envelope) is
what `schemas.encode(replace(emit.record, meta=emit.envelope(...)))` gives for a
BlockObserved or ContractEventObserved (one per block and one per log in a backfill), built
from byte strings (`omc_events.binary`) instead of fastavro's generic writer (the watcher
writes thousands of them a second). The fields that repeat from event to event (type,
aggregate, time, tenant, actor) are encoded once and cached.

The values are checked as the records' own `to_avro` checks them (hashes, addresses, hex,
wei); a bad value raises `RecordInvalid`. The first record of each type is also encoded by
the codec's generic path and compared byte for byte: if the schema changed shape, this path
turns itself off for that type and the caller falls back to the generic one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime

from omc_domain.chainview import SCHEMA_VERSION, Emit
from omc_events.avro import Schemas
from omc_events.binary import ADDRESS as _ADDRESS
from omc_events.binary import END as _END
from omc_events.binary import FALSE as _FALSE
from omc_events.binary import HASH32 as _HASH32
from omc_events.binary import HEX as _HEX
from omc_events.binary import NULL as _NULL
from omc_events.binary import SOME as _SOME
from omc_events.binary import TRUE as _TRUE
from omc_events.binary import WEI as _WEI
from omc_events.binary import long_, micros, optional, recurring, string
from omc_events.binary import require as _check
from omc_events.records import BlockObserved, ContractEventObserved

log = logging.getLogger("omc.watcher")

def _block(record: BlockObserved) -> bytes:
    _check(_HASH32(record.hash), "BlockObserved", "hash", "omc-hash32")
    _check(_HASH32(record.parent_hash), "BlockObserved", "parent_hash", "omc-hash32")
    fee = record.base_fee_per_gas_wei
    _check(fee is None or _WEI(fee), "BlockObserved", "base_fee_per_gas_wei", "omc-wei")
    return b"".join((long_(record.chain_id), long_(record.number), string(record.hash),
                     string(record.parent_hash), long_(micros(record.timestamp)),
                     optional(fee)))


def _log(record: ContractEventObserved) -> bytes:
    name = "ContractEventObserved"
    _check(_ADDRESS(record.address), name, "address", "omc-address")
    _check(all(map(_HASH32, record.topics)), name, "topics", "omc-hash32")
    _check(_HEX(record.data), name, "data", "omc-hex")
    _check(_HASH32(record.block_hash), name, "block_hash", "omc-hash32")
    _check(_HASH32(record.tx_hash), name, "tx_hash", "omc-hash32")
    topics = record.topics
    parts = [long_(record.chain_id), recurring(record.subscription_id),
             recurring(record.address)]
    if topics:
        parts.append(long_(len(topics)))
        parts.extend(map(string, topics))
    parts += [_END, string(record.data), long_(record.block_number),
              string(record.block_hash), string(record.tx_hash),
              long_(record.transaction_index), long_(record.log_index),
              _TRUE if record.removed else _FALSE,
              _NULL if record.event_signature is None
              else _SOME + recurring(record.event_signature), optional(record.decoded_json)]
    return b"".join(parts)


_BODIES: dict[type, Callable] = {BlockObserved: _block, ContractEventObserved: _log}


class Wire:
    def __init__(self, schemas: Schemas) -> None:
        self.schemas = schemas
        self._checked: dict[type, bool] = {}
        self._kind: dict[tuple[str, str, str], bytes] = {}
        self._who: dict[tuple[datetime, str, str], bytes] = {}

    def envelope(self, emit: Emit, occurred_at: datetime, actor: str, event_id: str,
                 sequence: int, prev_hash: str) -> bytes:
        """The Avro bytes of `emit.envelope(occurred_at, actor, event_id=…, sequence=…,
        prev_hash=…)` (EventMeta, fields in schema order) up to prev_hash, without the
        last field (hash)."""
        kind_key = (emit.record.SCHEMA, emit.aggregate_type, emit.aggregate_id)
        kind = self._kind.get(kind_key)
        if kind is None:
            if len(self._kind) > 1024:
                self._kind.clear()
            kind = self._kind[kind_key] = b"".join((
                string(emit.record.SCHEMA), long_(SCHEMA_VERSION), string(emit.aggregate_type),
                string(emit.aggregate_id)))
        who_key = (occurred_at, emit.tenant, actor)
        who = self._who.get(who_key)
        if who is None:
            if len(self._who) > 1024:
                self._who.clear()
            who = self._who[who_key] = b"".join((
                long_(micros(occurred_at)), string(emit.tenant), string(actor)))
        return b"".join((string(event_id), kind, long_(sequence), who,
                         string(emit.correlation_id or emit.causation_id),
                         optional(emit.causation_id), optional(emit.traceparent), _NULL,
                         string(prev_hash)))

    def parts(self, emit: Emit, occurred_at: datetime, actor: str, event_id: str,
              sequence: int, prev_hash: str) -> tuple[bytes, bytes] | None:
        """(the envelope up to prev_hash, the record's other fields); None when this path
        does not (or no longer) apply to the record's type."""
        record = emit.record
        body = _BODIES.get(type(record))
        if body is None:
            return None
        found = (self.envelope(emit, occurred_at, actor, event_id, sequence, prev_hash),
                 body(record))
        checked = self._checked.get(type(record))
        if checked is None:
            meta = emit.envelope(occurred_at, actor, event_id=event_id, sequence=sequence,
                                 prev_hash=prev_hash)
            generic = self.schemas.encode(dataclasses.replace(record, meta=meta))
            checked = self._checked[type(record)] = generic == found[0] + b"\x00" + found[1]
            if not checked:
                log.warning("%s: the schema no longer matches the direct encoding; using the "
                            "generic one", record.SCHEMA)
        return found if checked else None
