"""The Avro bytes of the tx manager's two records per transaction, written directly.

    wire = Wire(schemas)
    canonical = wire.encode(draft, envelope)   # bytes, or None: not TxSigned / TxBroadcast,
                                               # or this build's schema no longer matches

`encode(draft, envelope)` is what `schemas.encode(replace(draft, meta=EventMeta(**envelope)))`
gives for a TxSigned or a TxBroadcast (one of each per transaction), built from byte strings
(`omc_events.binary`) instead of fastavro's generic writer. The values are checked as the
records' own `to_avro` checks them (a bad one raises `RecordInvalid`). The first record of
each type is also encoded the generic way and compared byte for byte: if they differ (the
schema changed shape), this path turns itself off for that type and returns None.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from omc_events.avro import Schemas
from omc_events.binary import ADDRESS as _ADDRESS
from omc_events.binary import HASH32 as _HASH32
from omc_events.binary import HEX as _HEX
from omc_events.binary import NULL, SOME, boolean, envelope, long_, recurring, string
from omc_events.binary import WEI as _WEI
from omc_events.binary import require as _check
from omc_events.record import Record
from omc_events.records import EventMeta, TxBroadcast, TxSigned

log = logging.getLogger("omc_txmanager")

def _signed(r: TxSigned) -> bytes:
    _check(_ADDRESS(r.sender), "TxSigned", "sender", "omc-address")
    _check(_HASH32(r.tx_hash), "TxSigned", "tx_hash", "omc-hash32")
    _check(_HEX(r.raw_tx), "TxSigned", "raw_tx", "omc-hex")
    _check(_WEI(r.max_fee_per_gas_wei), "TxSigned", "max_fee_per_gas_wei", "omc-wei")
    _check(_WEI(r.max_priority_fee_per_gas_wei), "TxSigned", "max_priority_fee_per_gas_wei",
           "omc-wei")
    replaces = r.replaces_tx_hash
    _check(replaces is None or _HASH32(replaces), "TxSigned", "replaces_tx_hash", "omc-hash32")
    return b"".join((
        string(r.request_id), long_(r.chain_id), recurring(r.sender), long_(r.nonce),
        string(r.tx_hash), string(r.raw_tx), long_(r.gas_limit),
        string(r.max_fee_per_gas_wei), string(r.max_priority_fee_per_gas_wei),
        NULL if replaces is None else SOME + string(replaces)))


def _broadcast(r: TxBroadcast) -> bytes:
    _check(_HASH32(r.tx_hash), "TxBroadcast", "tx_hash", "omc-hash32")
    return b"".join((string(r.request_id), string(r.tx_hash), recurring(r.rpc_endpoint),
                     long_(r.attempt), boolean(r.already_known)))


_BODIES: dict[type, Callable[[Any], bytes]] = {TxSigned: _signed, TxBroadcast: _broadcast}


class Wire:
    def __init__(self, schemas: Schemas) -> None:
        self.schemas = schemas
        self._checked: dict[type, bool] = {}

    def encode(self, draft: Record, meta: Mapping[str, Any]) -> bytes | None:
        """The Avro bytes of `draft` with the envelope `meta` (EventMeta's fields); None when
        this path does not (or no longer) apply to its type."""
        body = _BODIES.get(type(draft))
        if body is None:
            return None
        rest = body(draft)  # its values checked first
        found = envelope(meta) + rest
        checked = self._checked.get(type(draft))
        if checked is None:
            generic = self.schemas.encode(dataclasses.replace(draft, meta=EventMeta(**meta)))
            checked = self._checked[type(draft)] = generic == found
            if not checked:
                log.warning("%s: the schema no longer matches the direct encoding; using the "
                            "generic one", draft.SCHEMA)
        return found if checked else None
