"""The tx manager's pure parts: node error wordings, endpoint names, settings."""

from __future__ import annotations

import pytest

from omc_errors import ConfigError
from omc_txmanager.rpc import (
    AlreadyKnown,
    ExecutionReverted,
    InsufficientFunds,
    NonceTooLow,
    Rejected,
    Underpriced,
    classify,
    endpoints_from,
)
from omc_txmanager.settings import TxManagerSettings


@pytest.mark.parametrize(("message", "kind"), [
    ("already known", AlreadyKnown),
    ("known transaction: 0xabc", AlreadyKnown),
    ("nonce too low", NonceTooLow),
    ("nonce too low: next nonce 5, tx nonce 3", NonceTooLow),
    ("replacement transaction underpriced", Underpriced),
    ("transaction underpriced: tip needed 1, tip permitted 0", Underpriced),
    ("max fee per gas less than block base fee", Underpriced),
    ("Insufficient funds for gas * price + value", InsufficientFunds),
    ("insufficient funds for gas * price + value: balance 0", InsufficientFunds),
    ("execution reverted: not owner", ExecutionReverted),
    ("intrinsic gas too low", Rejected),
])
def test_node_wordings_are_classified(message, kind) -> None:
    assert classify(message) is kind


def test_endpoints_are_named_by_host_and_port_only() -> None:
    found = endpoints_from("https://user:pw@rpc.example.org/v3/SECRET?k=SECRET,"
                           "http://127.0.0.1:8545, https://rpc.example.org/other")

    assert [e.name for e in found] == ["rpc.example.org", "127.0.0.1:8545", "rpc.example.org#2"]
    assert "SECRET" not in repr(found)


def test_settings_name_every_bad_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        TxManagerSettings.from_env({"OMC_TXMANAGER_RPC_URLS": "ftp://x",
                                    "OMC_TXMANAGER_STUCK_BLOCKS": "0",
                                    "OMC_TXMANAGER_TOPIC": "bad topic"})

    text = str(caught.value)
    assert "OMC_TXMANAGER_RPC_URLS" in text
    assert "OMC_TXMANAGER_STUCK_BLOCKS" in text
    assert "OMC_TXMANAGER_TOPIC" in text


def test_settings_default_to_the_local_stack() -> None:
    settings = TxManagerSettings.from_env({})

    assert [e.name for e in settings.endpoints] == ["127.0.0.1:18545"]
    assert (settings.topic, settings.group) == ("omc.tx.events.v1", "omc.txmanager")


# -- the direct encoding of TxSigned and TxBroadcast ------------------------------------------


def _tx_records():
    from omc_domain.draft import DRAFT
    from omc_events.records import TxBroadcast, TxSigned

    h = "0x" + "5e" * 32
    sender = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    request = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5"
    yield TxSigned(meta=DRAFT, request_id=request, chain_id=31337, sender=sender, nonce=0,
                   tx_hash=h, raw_tx="0x02" + "ab" * 120, gas_limit=21000,
                   max_fee_per_gas_wei="0", max_priority_fee_per_gas_wei="1",
                   replaces_tx_hash=None)
    yield TxSigned(meta=DRAFT, request_id=request, chain_id=2**40, sender=sender, nonce=10**12,
                   tx_hash=h, raw_tx="0x" + "cd" * 5000, gas_limit=30_000_000,
                   max_fee_per_gas_wei=str(10**40), max_priority_fee_per_gas_wei=str(10**9),
                   replaces_tx_hash="0x" + "01" * 32)
    yield TxBroadcast(meta=DRAFT, request_id=request, tx_hash=h, rpc_endpoint="127.0.0.1:8545",
                      attempt=1, already_known=False)
    yield TxBroadcast(meta=DRAFT, request_id=request, tx_hash=h, rpc_endpoint="nöde.example",
                      attempt=70_000, already_known=True)


@pytest.mark.parametrize("draft", list(_tx_records()), ids=lambda r: r.SCHEMA)
def test_tx_records_are_encoded_directly_to_the_codecs_bytes(draft) -> None:
    import dataclasses
    from datetime import UTC, datetime

    from omc_events.avro import Schemas
    from omc_events.records import EventMeta
    from omc_txmanager.wire import Wire

    schemas = Schemas()
    for traced in (False, True):
        envelope = {
            "event_id": "0b1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5", "event_type": draft.SCHEMA,
            "schema_version": 1, "aggregate_type": "account",
            "aggregate_id": "31337:0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "sequence": 9000 if traced else 1,
            "occurred_at": datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC),
            "tenant": "acme ü", "actor": "svc:tx-manager", "correlation_id": "corr",
            "causation_id": "cause" if traced else None,
            "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01" if traced else None,
            "tracestate": "k=v" if traced else None, "prev_hash": "ab" * 32, "hash": ""}
        assert Wire(schemas).encode(draft, envelope) == schemas.encode(
            dataclasses.replace(draft, meta=EventMeta(**envelope)))


def test_a_bad_tx_value_is_refused_by_the_direct_encoding_too() -> None:
    import dataclasses

    from omc_events.avro import RecordInvalid, Schemas
    from omc_txmanager.wire import Wire

    bad = dataclasses.replace(next(_tx_records()), raw_tx="0xZZ")
    with pytest.raises(RecordInvalid, match="raw_tx"):
        Wire(Schemas()).encode(bad, {})
