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
