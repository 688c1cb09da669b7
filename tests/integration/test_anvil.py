"""The local chain is real: a signed EIP-1559 transfer is mined and its receipt read."""

from __future__ import annotations

from eth_account import Account
from web3 import Web3

from omc_config import Settings


def test_chain_answers_with_the_configured_chain_id(web3: Web3, settings: Settings) -> None:
    assert web3.eth.chain_id == settings.chain_id


def test_signed_eip1559_transfer_is_included_with_its_receipt(
    web3: Web3, funded_account, settings: Settings
) -> None:
    recipient = Account.create().address
    value = 123_456_789
    base_fee = web3.eth.get_block("latest")["baseFeePerGas"]
    priority = web3.to_wei(1, "gwei")
    transaction = {
        "type": 2, "chainId": settings.chain_id, "nonce": 0, "to": recipient, "value": value,
        "gas": 21_000, "maxPriorityFeePerGas": priority, "maxFeePerGas": 2 * base_fee + priority,
    }
    before = web3.eth.get_balance(funded_account.address)

    signed = funded_account.sign_transaction(transaction)
    sent_hash = web3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = web3.eth.wait_for_transaction_receipt(sent_hash, timeout=30)

    assert sent_hash == signed.hash
    assert receipt["status"] == 1
    assert receipt["type"] == 2
    assert receipt["from"] == funded_account.address
    assert web3.eth.get_balance(recipient) == value
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert web3.eth.get_balance(funded_account.address) == before - value - fee
    assert web3.eth.get_transaction(sent_hash)["maxFeePerGas"] == transaction["maxFeePerGas"]
