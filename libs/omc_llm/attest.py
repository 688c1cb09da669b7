"""Signed inference: the digest an InferenceCompleted carries, its signature, and the check.

    inference_digest(inference_id, model, parameters_json, prompt_hash, response, tool_calls)
        = "0x" + SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8 kept) of
          {"inference_id", "model", "parameters_json", "prompt_hash", "response",
           "tool_calls": [{"arguments_json", "call_id", "name"}, …]}
    Attestor(private_key).sign(digest) = "0x" + 130 hex: r || s || v (v = 27 or 28), a
        secp256k1 signature over the raw 32-byte digest (no EIP-191 prefix)
    verify_inference(event) -> bool: the digest recomputed from the event's fields equals
        event.digest, and the signature recovers event.signer

The attestation key is the LLM adapter's own, never an agent's transaction key. It comes from
a secret file or a hex string given by settings; an Attestor never shows it (repr, str, pickle,
errors). Signing uses eth-account (fast with coincurve installed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import coincurve
from eth_account import Account

from omc_errors import ConfigError
from omc_events.records import InferenceCompleted
from omc_llm.canonical import canonical_json, sha256_hex

_KEY = re.compile(r"(?:0x)?[0-9a-fA-F]{64}")
_DIGEST = re.compile(r"0x[0-9a-f]{64}")
_SIGNATURE = re.compile(r"0x[0-9a-f]{130}")


def _call_fields(call: Any) -> dict[str, str]:
    if isinstance(call, dict):
        return {"arguments_json": call["arguments_json"], "call_id": call["call_id"],
                "name": call["name"]}
    return {"arguments_json": call.arguments_json, "call_id": call.call_id, "name": call.name}


def inference_digest(inference_id: str, model: str, parameters_json: str, prompt_hash: str,
                     response: str, tool_calls: Iterable[Any]) -> str:
    """The digest InferenceCompleted.digest holds. Tool calls: ToolCall, ToolCallOut or dicts."""
    return sha256_hex(canonical_json({
        "inference_id": inference_id, "model": model, "parameters_json": parameters_json,
        "prompt_hash": prompt_hash, "response": response,
        "tool_calls": [_call_fields(c) for c in tool_calls],
    }))


def _digest_bytes(digest: str) -> bytes:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ValueError("a digest is 0x + 64 lowercase hex digits")
    return bytes.fromhex(digest[2:])


class Attestor:
    """The adapter's attestation key: signs inference digests. Never shows the key."""

    __slots__ = ("_account", "_signer")

    def __init__(self, private_key: str | bytes) -> None:
        if isinstance(private_key, str):
            text = private_key.strip()
            if not _KEY.fullmatch(text):
                raise ConfigError(["attestation key: not a 32-byte hex private key "
                                   "(64 hex digits, optionally 0x-prefixed)"])
            private_key = bytes.fromhex(text.removeprefix("0x"))
        try:
            self._account = Account.from_key(private_key)
            self._signer = coincurve.PrivateKey(bytes(self._account.key))
        except (ValueError, TypeError):
            raise ConfigError(["attestation key: not a valid secp256k1 private key"]) from None

    @classmethod
    def from_file(cls, path: str | Path) -> Attestor:
        """The key held (as hex) in a secret file, e.g. a mounted Kubernetes secret."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError([f"attestation key file {path}: cannot be read "
                               f"({error.strerror or type(error).__name__})"]) from None
        try:
            return cls(text)
        except ConfigError:
            raise ConfigError([f"attestation key file {path}: does not hold a 32-byte hex "
                               f"private key"]) from None

    @classmethod
    def from_settings(cls, *, key_file: str | Path | None = None,
                      key_hex: str | None = None) -> Attestor:
        """The key from a secret file (preferred) or a hex string; exactly one must be given."""
        if (key_file is None) == (key_hex is None):
            raise ConfigError(["attestation key: give exactly one of a key file or a hex key"])
        return cls.from_file(key_file) if key_file is not None else cls(key_hex)  # type: ignore[arg-type]

    @property
    def address(self) -> str:
        """The EIP-55 address anyone can check signatures against."""
        return self._account.address

    def sign(self, digest: str) -> str:
        """The signature of `digest`: "0x" + 130 lowercase hex (r || s || v, v = 27/28)."""
        # libsecp256k1 directly (what eth-account uses underneath, without rebuilding the key
        # objects per call): r || s || recovery id, low-s normalised; Ethereum's v = id + 27.
        signed = self._signer.sign_recoverable(_digest_bytes(digest), hasher=None)
        return "0x" + signed[:64].hex() + f"{signed[64] + 27:02x}"

    def __repr__(self) -> str:
        return f"Attestor(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an Attestor holds a private key and is not pickled")


def recover_signer(digest: str, signature: str) -> str:
    """The address whose key made `signature` over `digest`; ValueError if malformed."""
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        raise ValueError("a signature is 0x + 130 lowercase hex digits")
    if int(signature[-2:], 16) not in (27, 28):
        raise ValueError("a signature's v is 27 or 28")
    return Account._recover_hash(_digest_bytes(digest), signature=bytes.fromhex(signature[2:]))


def verify_inference(event: InferenceCompleted) -> bool:
    """True when the event's digest matches its fields and its signature is by its signer."""
    digest = inference_digest(event.inference_id, event.model, event.parameters_json,
                              event.prompt_hash, event.response, event.tool_calls)
    if digest != event.digest:
        return False
    try:
        signer = recover_signer(event.digest, event.signature)
    except Exception:  # a signature that cannot be recovered is simply not valid
        return False
    return signer.lower() == event.signer.lower()
