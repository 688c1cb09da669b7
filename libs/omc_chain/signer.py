"""Key custody: who may sign for an account, and signing EIP-1559 transactions.

    Signer                     protocol: `address` (EIP-55) and
                               `sign_transaction(tx) -> (raw_tx "0x…", tx_hash "0x…")`
    LocalKeySigner             a secp256k1 key held in this process, loaded once from an
                               encrypted JSON keystore (eth-account, password from a file) or
                               from a file holding the key as hex
    Signers                    the signers of a process, by address; `Signers.from_env()`
    install_local_dev_key(...) anvil's first development key written to .stack/txmanager/keys
                               for the local stack only (chain id 31337), so `omc up` can
                               run the demo

Settings (read by `Signers.from_env`):

    OMC_TXMANAGER_KEYSTORE_DIR            directory of encrypted JSON keystores (*.json)
    OMC_TXMANAGER_KEYSTORE_PASSWORD_FILE  file holding their password (one for all)
    OMC_TXMANAGER_KEY_FILES               comma-separated files, each a hex private key
    (none of them set: <stack dir>/txmanager/keys/*.key, the local stack's key files)

A transaction dict has the fields of a type-2 transaction: chainId, nonce, gas,
maxFeePerGas, maxPriorityFeePerGas, to, value (ints), data (hex string or bytes), and
optionally accessList (only an empty one is supported). Signing builds the EIP-2718 envelope
itself and signs with coincurve (eth-account's own path is slower, about 1,300/s on one core
here); the bytes are identical to eth-account's (tested).

The key never leaves its signer: repr/str show only the address, errors say which file and
what went wrong but never its content, and nothing here logs. A KMS or Vault signer is any
object with the `Signer` protocol.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import coincurve
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from omc_chain.errors import ChainError

LOCAL_CHAIN_ID = 31337
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SignerError(ChainError):
    """A key could not be loaded, or no signer holds the key for an address."""


class UnknownSigner(SignerError):
    """No key for this address is loaded in this process."""


@runtime_checkable
class Signer(Protocol):
    """Signs transactions for one account; the key stays behind this interface."""

    @property
    def address(self) -> str:
        """The account's address, EIP-55."""
        ...

    def sign_transaction(self, tx: Mapping[str, Any]) -> tuple[str, str]:
        """(raw EIP-2718 transaction "0x…", its hash "0x…"), both lowercase hex."""
        ...


class LocalKeySigner:
    """A secp256k1 key held in memory (loaded once); see the module docstring."""

    __slots__ = ("_address", "_key")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < _SECP256K1_N:
            raise SignerError("a private key is 32 bytes in 1..n-1 of secp256k1")
        self._key = coincurve.PrivateKey(secret)
        public = self._key.public_key.format(compressed=False)[1:]
        self._address = to_checksum_address(keccak(public)[-20:])

    @classmethod
    def from_secret_file(cls, path: Path) -> LocalKeySigner:
        """A key stored as hex (with or without 0x) in `path`."""
        try:
            text = Path(path).read_text().strip()
        except OSError as error:
            raise SignerError(f"cannot read key file {path}: {error.strerror}") from None
        try:
            secret = bytes.fromhex(text.removeprefix("0x"))
        except ValueError:
            raise SignerError(f"key file {path} does not hold a hex private key") from None
        try:
            return cls(secret)
        except SignerError:
            raise SignerError(f"key file {path} does not hold a valid private key") from None

    @classmethod
    def from_keystore(cls, path: Path, password: str) -> LocalKeySigner:
        """A key from an encrypted JSON keystore (Web3 Secret Storage, eth-account)."""
        from eth_account import Account

        try:
            keystore = json.loads(Path(path).read_text())
        except OSError as error:
            raise SignerError(f"cannot read keystore {path}: {error.strerror}") from None
        except ValueError:
            raise SignerError(f"keystore {path} is not JSON") from None
        try:
            secret = bytes(Account.decrypt(keystore, password))
        except (ValueError, KeyError, TypeError):
            raise SignerError(f"keystore {path} could not be decrypted (wrong password or "
                              "not a keystore)") from None
        return cls(secret)

    @property
    def address(self) -> str:
        return self._address

    def sign_transaction(self, tx: Mapping[str, Any]) -> tuple[str, str]:
        payload = _eip1559_fields(tx)
        digest = keccak(b"\x02" + _rlp_list(payload))
        signature = self._key.sign_recoverable(digest, hasher=None)
        r, s, v = signature[:32], signature[32:64], signature[64]
        raw = b"\x02" + _rlp_list([*payload, _rlp_int(v), _rlp_bytes(r.lstrip(b"\0")),
                                   _rlp_bytes(s.lstrip(b"\0"))])
        return "0x" + raw.hex(), "0x" + keccak(raw).hex()

    def __repr__(self) -> str:
        return f"LocalKeySigner(address={self._address!r})"

    __str__ = __repr__

    def __reduce__(self):  # never pickled (a pickle would carry the key)
        raise TypeError("a LocalKeySigner cannot be pickled")


class Signers(Mapping[str, Signer]):
    """The signers of this process by address (lookup ignores case)."""

    def __init__(self, signers: Iterable[Signer] = ()) -> None:
        self._by_address: dict[str, Signer] = {}
        for signer in signers:
            self._by_address[signer.address.lower()] = signer

    def __getitem__(self, address: str) -> Signer:
        try:
            return self._by_address[address.lower()]
        except KeyError:
            raise UnknownSigner(f"no key for {address} is loaded in this process") from None

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and address.lower() in self._by_address

    def __iter__(self):
        return iter(signer.address for signer in self._by_address.values())

    def __len__(self) -> int:
        return len(self._by_address)

    def __repr__(self) -> str:
        return f"Signers({sorted(self)!r})"

    @classmethod
    def load(cls, *, keystore_dir: Path | None = None, password_file: Path | None = None,
             key_files: Iterable[Path] = ()) -> Signers:
        """Every keystore in `keystore_dir` (*.json, decrypted with the password in
        `password_file`) and every hex key file in `key_files`."""
        signers: list[Signer] = []
        if keystore_dir is not None:
            if password_file is None:
                raise SignerError("a keystore directory needs "
                                  "OMC_TXMANAGER_KEYSTORE_PASSWORD_FILE")
            try:
                password = Path(password_file).read_text().rstrip("\r\n")
            except OSError as error:
                raise SignerError(f"cannot read password file {password_file}: "
                                  f"{error.strerror}") from None
            for path in sorted(Path(keystore_dir).glob("*.json")):
                signers.append(LocalKeySigner.from_keystore(path, password))
        signers += [LocalKeySigner.from_secret_file(Path(p)) for p in key_files]
        return cls(signers)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None,
                 stack_dir: Path | None = None) -> Signers:
        """The signers the settings name (module docstring); by default the local stack's
        key files under `<stack_dir>/txmanager/keys`."""
        env = os.environ if env is None else env
        keystore_dir = (env.get("OMC_TXMANAGER_KEYSTORE_DIR") or "").strip()
        password = (env.get("OMC_TXMANAGER_KEYSTORE_PASSWORD_FILE") or "").strip()
        files = [f.strip() for f in (env.get("OMC_TXMANAGER_KEY_FILES") or "").split(",")
                 if f.strip()]
        if not keystore_dir and not files and stack_dir is not None:
            files = [str(p) for p in sorted(local_keys_dir(stack_dir).glob("*.key"))]
        return cls.load(keystore_dir=Path(keystore_dir) if keystore_dir else None,
                        password_file=Path(password) if password else None,
                        key_files=[Path(f) for f in files])


def local_keys_dir(stack_dir: Path) -> Path:
    """Where the local stack keeps the tx manager's key files."""
    return Path(stack_dir) / "txmanager" / "keys"


def install_local_dev_key(stack_dir: Path, chain_id: int) -> Path:
    """Write anvil's first development key (account 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266,
    published in every Foundry manual) to `<stack_dir>/txmanager/keys/anvil-dev-0.key`, mode
    0600, for the local stack's demo. Refused unless `chain_id` is 31337. Idempotent."""
    from omc_chain.deploy import local_deployer
    from omc_chain.errors import DeployFailed

    try:
        account = local_deployer(chain_id)
    except DeployFailed:
        raise SignerError(f"the public anvil development key is only installed for the local "
                          f"chain (id {LOCAL_CHAIN_ID}); this chain has id {chain_id}") from None
    directory = local_keys_dir(stack_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "anvil-dev-0.key"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(account.key.hex() + "\n")
    os.chmod(path, 0o600)
    return path


# -- EIP-1559 encoding (RLP) --------------------------------------------------------------------


def _eip1559_fields(tx: Mapping[str, Any]) -> list[bytes]:
    if tx.get("type", 2) not in (2, "0x2"):
        raise SignerError("only type-2 (EIP-1559) transactions are signed here")
    if tx.get("accessList"):
        raise SignerError("access lists are not supported by this signer")
    to = tx.get("to")
    data = tx.get("data", b"")
    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x"))
    try:
        return [
            _rlp_int(int(tx["chainId"])), _rlp_int(int(tx["nonce"])),
            _rlp_int(int(tx["maxPriorityFeePerGas"])), _rlp_int(int(tx["maxFeePerGas"])),
            _rlp_int(int(tx["gas"])),
            _rlp_bytes(bytes.fromhex(to.removeprefix("0x")) if to else b""),
            _rlp_int(int(tx.get("value", 0))), _rlp_bytes(bytes(data)), b"\xc0",
        ]
    except (KeyError, ValueError, TypeError) as error:
        raise SignerError(f"the transaction is missing or has a bad field: {error}") from None


def _rlp_int(value: int) -> bytes:
    if value < 0:
        raise SignerError("transaction integers are never negative")
    return _rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _rlp_bytes(data: bytes) -> bytes:
    if len(data) == 1 and data[0] < 0x80:
        return data
    return _rlp_length(len(data), 0x80) + data


def _rlp_list(items: list[bytes]) -> bytes:
    body = b"".join(items)
    return _rlp_length(len(body), 0xC0) + body


def _rlp_length(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(encoded)]) + encoded
