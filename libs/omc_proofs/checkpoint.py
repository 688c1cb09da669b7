"""Checkpoints: what the notary signs, how it signs, and how anyone checks it.

    stream_id(topic, partition)      "<topic>:<partition>", the proof topic's key
    stream_key(stream_id)            bytes32 for AnchorRegistry: keccak256(UTF-8 stream id)
    checkpoint_digest(...)           "0x" + SHA-256 of the canonical JSON (sorted keys, no
                                     spaces) of {first_offset, last_offset, previous_root,
                                     previous_tree_size, root, stream_id, tree_size}
                                     (CheckpointSigned.digest's definition)
    NotaryKey(private_key).sign(d)   "0x" + 130 hex: r || s || v (v = 27/28), secp256k1 over
                                     the raw 32-byte digest (no EIP-191 prefix), as
                                     omc_llm.attest signs inferences
    recover_signer(digest, sig)      the EIP-55 address that made `sig`
    checkpoint_problems(cp, trusted) [] when the digest matches the fields and the signature
                                     recovers `signer` (one of `trusted`, when given)

The key comes from a secret file or a hex string and is never shown (repr, str, pickle,
errors). Pure apart from reading the key file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from coincurve import PublicKey
from eth_account import Account
from eth_utils import keccak

from omc_errors import ConfigError

_KEY = re.compile(r"(?:0x)?[0-9a-fA-F]{64}")
_DIGEST = re.compile(r"0x[0-9a-f]{64}")
_SIGNATURE = re.compile(r"0x[0-9a-f]{130}")


def stream_id(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def parse_stream_id(stream: str) -> tuple[str, int]:
    topic, _, partition = stream.rpartition(":")
    if not topic or not partition.isdigit():
        raise ValueError(f"{stream!r} is not <topic>:<partition>")
    return topic, int(partition)


def stream_key(stream: str) -> bytes:
    """The bytes32 a stream is anchored under in AnchorRegistry."""
    return keccak(stream.encode("utf-8"))


def hex32(data: bytes) -> str:
    return "0x" + data.hex()


def unhex32(text: str) -> bytes:
    if not isinstance(text, str) or not _DIGEST.fullmatch(text):
        raise ValueError(f"{text!r} is not 0x + 64 lowercase hex digits")
    return bytes.fromhex(text[2:])


def checkpoint_digest(*, stream_id: str, tree_size: int, root: str, first_offset: int,
                      last_offset: int, previous_tree_size: int,
                      previous_root: str | None) -> str:
    body = json.dumps({"first_offset": first_offset, "last_offset": last_offset,
                       "previous_root": previous_root, "previous_tree_size": previous_tree_size,
                       "root": root, "stream_id": stream_id, "tree_size": tree_size},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "0x" + hashlib.sha256(body.encode("utf-8")).hexdigest()


def digest_of(checkpoint: Any) -> str:
    """The digest recomputed from a CheckpointSigned's fields."""
    return checkpoint_digest(
        stream_id=checkpoint.stream_id, tree_size=checkpoint.tree_size, root=checkpoint.root,
        first_offset=checkpoint.first_offset, last_offset=checkpoint.last_offset,
        previous_tree_size=checkpoint.previous_tree_size,
        previous_root=checkpoint.previous_root)


class NotaryKey:
    """The notary's signing key. Never shows the key."""

    __slots__ = ("_account",)

    def __init__(self, private_key: str | bytes) -> None:
        if isinstance(private_key, str):
            text = private_key.strip()
            if not _KEY.fullmatch(text):
                raise ConfigError(["notary key: not a 32-byte hex private key "
                                   "(64 hex digits, optionally 0x-prefixed)"])
            private_key = bytes.fromhex(text.removeprefix("0x"))
        try:
            self._account = Account.from_key(private_key)
        except (ValueError, TypeError):
            raise ConfigError(["notary key: not a valid secp256k1 private key"]) from None

    @classmethod
    def from_file(cls, path: str | Path) -> NotaryKey:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError([f"notary key file {path}: cannot be read "
                               f"({error.strerror or type(error).__name__})"]) from None
        try:
            return cls(text)
        except ConfigError:
            raise ConfigError([f"notary key file {path}: does not hold a 32-byte hex "
                               "private key"]) from None

    @property
    def address(self) -> str:
        return self._account.address

    def sign(self, digest: str) -> str:
        signed = Account.unsafe_sign_hash(unhex32(digest), self._account.key)
        signature = signed.signature.hex()
        return signature if signature.startswith("0x") else "0x" + signature

    def __repr__(self) -> str:
        return f"NotaryKey(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a NotaryKey holds a private key and is not pickled")


def recover_signer(digest: str, signature: str) -> str:
    """The address whose key made `signature` over `digest`; ValueError if malformed."""
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        raise ValueError("a signature is 0x + 130 lowercase hex digits")
    if int(signature[-2:], 16) not in (27, 28):
        raise ValueError("a signature's v is 27 or 28")
    return Account._recover_hash(unhex32(digest), signature=bytes.fromhex(signature[2:]))


def signed_by(digest: str, signature: str, address: str) -> bool:
    """Does `signature` over `digest` recover `address`? The same answer as comparing
    recover_signer's, through coincurve directly (several times faster: no checksum)."""
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        return False
    v = int(signature[-2:], 16)
    if v not in (27, 28) or not isinstance(address, str):
        return False
    try:
        raw = bytes.fromhex(signature[2:])
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big")
        if not (0 < r < _N and 0 < s < _N):
            return False
        public = PublicKey.from_signature_and_message(raw[:64] + bytes([v - 27]),
                                                      unhex32(digest), hasher=None)
    except Exception:  # a signature that does not recover is not valid
        return False
    point = public.format(compressed=False)
    recovered = _ADDRESSES.get(point)
    if recovered is None:
        if len(_ADDRESSES) >= 4096:  # a few signers sign nearly everything: keep it small
            _ADDRESSES.clear()
        recovered = _ADDRESSES[point] = "0x" + keccak(point[1:])[-20:].hex()
    return recovered == address.lower()


_ADDRESSES: dict[bytes, str] = {}  # public key -> its address (keccak is not free)


_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def checkpoint_problems(checkpoint: Any, trusted: Collection[str] = ()) -> list[str]:
    """What is wrong with a CheckpointSigned's digest and signature ([] when nothing)."""
    problems = []
    if digest_of(checkpoint) != checkpoint.digest:
        problems.append("checkpoint digest does not match its fields")
    if signed_by(checkpoint.digest, checkpoint.signature, checkpoint.signer):
        if trusted and checkpoint.signer.lower() not in {t.lower() for t in trusted}:
            problems.append(f"checkpoint signer {checkpoint.signer} is not a trusted notary")
        return problems
    try:
        signer = recover_signer(checkpoint.digest, checkpoint.signature)
    except Exception as error:  # any signature that does not recover is not valid
        return [*problems, f"checkpoint signature does not recover a signer ({error})"]
    problems.append(f"checkpoint signature is not by its signer {checkpoint.signer} "
                    f"(it recovers {signer})")
    return problems
