"""Key custody: keys load from a keystore or a hex file, sign exactly as eth-account does, and
never show up in a repr, an error or a log line; the local dev key only for chain 31337."""

from __future__ import annotations

import json
import logging
import stat

import pytest
from eth_account import Account

from omc_chain.signer import (
    LocalKeySigner,
    Signer,
    SignerError,
    Signers,
    UnknownSigner,
    install_local_dev_key,
)

ANVIL_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.fixture
def account():
    return Account.create()


def encrypted(account, password: str) -> str:
    """A keystore, with a cheap KDF so the test stays fast."""
    return json.dumps(Account.encrypt(account.key, password, kdf="pbkdf2", iterations=2))


def secret_of(account) -> str:
    return bytes(account.key).hex()


@pytest.mark.parametrize("data", ["0x", "0x" + "ab" * 40, "0x" + "cd" * 4000])
@pytest.mark.parametrize("to", ["0x000000000000000000000000000000000000bEEF", None])
def test_signatures_are_byte_for_byte_eth_accounts(account, data, to) -> None:
    signer = LocalKeySigner(bytes(account.key))
    tx = {"type": 2, "chainId": 31337, "nonce": 300, "gas": 90_000, "value": 10**18 + 1,
          "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9, "data": data}
    if to:
        tx["to"] = to

    raw, tx_hash = signer.sign_transaction(tx)

    expected = account.sign_transaction(tx)
    assert raw == "0x" + expected.raw_transaction.hex()
    assert tx_hash == "0x" + expected.hash.hex()
    assert isinstance(signer, Signer)


def test_a_keystore_and_a_hex_file_load_the_same_key(account, tmp_path) -> None:
    (tmp_path / "ks").mkdir()
    (tmp_path / "ks" / "a.json").write_text(encrypted(account, "pw"))
    (tmp_path / "pw").write_text("pw\n")
    (tmp_path / "a.key").write_text("0x" + secret_of(account) + "\n")

    from_keystore = Signers.load(keystore_dir=tmp_path / "ks", password_file=tmp_path / "pw")
    from_file = Signers.from_env({"OMC_TXMANAGER_KEY_FILES": str(tmp_path / "a.key")})

    assert list(from_keystore) == list(from_file) == [account.address]
    assert account.address.lower() in from_file
    with pytest.raises(UnknownSigner):
        from_file["0x000000000000000000000000000000000000bEEF"]


def test_no_repr_or_error_shows_the_key(account, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    signer = LocalKeySigner(bytes(account.key))
    bad = tmp_path / "bad.key"
    bad.write_text(secret_of(account)[:-2] + "zz")
    keystore = tmp_path / "ks.json"
    keystore.write_text(encrypted(account, "right"))
    errors = []
    for attempt in (lambda: LocalKeySigner.from_secret_file(bad),
                    lambda: LocalKeySigner.from_keystore(keystore, "wrong"),
                    lambda: signer.sign_transaction({"nonce": 1})):
        with pytest.raises(SignerError) as caught:
            attempt()
        errors.append(str(caught.value))
    shown = " ".join([repr(signer), str(signer), repr(Signers([signer])), *errors,
                      caplog.text]).lower()
    assert account.address in repr(signer)
    assert secret_of(account) not in shown
    assert secret_of(account)[:-2] not in shown
    with pytest.raises(TypeError):
        __import__("pickle").dumps(signer)


def test_the_local_dev_key_is_installed_only_for_chain_31337(tmp_path) -> None:
    with pytest.raises(SignerError):
        install_local_dev_key(tmp_path, 1)
    assert not (tmp_path / "txmanager").exists()

    path = install_local_dev_key(tmp_path, 31337)
    install_local_dev_key(tmp_path, 31337)  # idempotent

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(Signers.from_env({}, stack_dir=tmp_path)) == [ANVIL_0]
