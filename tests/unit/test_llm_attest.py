"""Signed inference: the digest's exact definition, signatures, verification, key hygiene."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import pickle
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from eth_account import Account

from omc_errors import ConfigError
from omc_events.records import EventMeta, InferenceCompleted, ToolCall
from omc_llm.attest import Attestor, inference_digest, recover_signer, verify_inference
from omc_llm.canonical import decimal_text
from omc_llm.model import InferenceError, InferenceInput, InferenceOutput, ToolCallOut
from omc_llm.planner import LocalPlanner
from omc_llm.prompt import render
from omc_llm.runner import failed, infer
from omc_llm.tools import tool_schemas

KEY = "0x" + "4c" * 32
PROMPT_HASH = "0x" + "11" * 32


def meta() -> EventMeta:
    return EventMeta(event_id="00000000-0000-5000-8000-000000000001",
                     event_type="omc.task.InferenceCompleted", schema_version=1,
                     aggregate_type="task", aggregate_id="t", sequence=3,
                     occurred_at=datetime(2026, 11, 25, tzinfo=UTC), tenant="t", actor="svc:x",
                     correlation_id="c", prev_hash="0" * 64, hash="0" * 64)


def test_digest_is_sha256_of_the_documented_canonical_json() -> None:
    calls = [ToolCall(call_id="c1", name="get_balance", arguments_json='{"address":"0x01"}')]
    digest = inference_digest("inf-1", "m", '{"temperature":0}', PROMPT_HASH, "é", calls)
    document = {"inference_id": "inf-1", "model": "m", "parameters_json": '{"temperature":0}',
                "prompt_hash": PROMPT_HASH, "response": "é",
                "tool_calls": [{"arguments_json": '{"address":"0x01"}', "call_id": "c1",
                                "name": "get_balance"}]}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert digest == "0x" + hashlib.sha256(text.encode()).hexdigest()
    same = inference_digest("inf-1", "m", '{"temperature":0}', PROMPT_HASH, "é",
                            [ToolCallOut("c1", "get_balance", '{"address":"0x01"}')])
    assert same == digest
    assert inference_digest("inf-1", "m", "{}", PROMPT_HASH, "é", calls) != digest


def test_signature_is_65_bytes_over_the_raw_digest() -> None:
    attestor = Attestor(KEY)
    assert attestor.address == Account.from_key(KEY).address
    digest = inference_digest("i", "m", "{}", PROMPT_HASH, "", [])
    signature = attestor.sign(digest)
    assert len(signature) == 132
    assert signature == signature.lower()
    assert int(signature[-2:], 16) in (27, 28)
    assert recover_signer(digest, signature) == attestor.address
    assert attestor.sign(digest) == signature  # RFC 6979: deterministic
    with pytest.raises(ValueError, match="64 lowercase hex"):
        attestor.sign("0x1234")


def test_the_key_never_shows() -> None:
    attestor = Attestor(KEY)
    for text in (repr(attestor), str(attestor), f"{attestor}"):
        assert "4c4c4c" not in text.lower()
        assert attestor.address in text
    with pytest.raises(TypeError):
        pickle.dumps(attestor)
    with pytest.raises(AttributeError):
        attestor.__dict__  # noqa: B018 - slots only, no dict to dump
    with pytest.raises(ConfigError) as caught:
        Attestor("0x" + "zz" * 32)
    assert "zz" not in str(caught.value)


def test_key_from_file_or_hex(tmp_path) -> None:
    secret = tmp_path / "attestation.key"
    secret.write_text(KEY.removeprefix("0x") + "\n")
    assert Attestor.from_file(secret).address == Attestor(KEY).address
    assert Attestor.from_settings(key_hex=KEY).address == Attestor(KEY).address
    assert Attestor.from_settings(key_file=str(secret)).address == Attestor(KEY).address
    bad = tmp_path / "bad.key"
    bad.write_text("not a key 0123")
    with pytest.raises(ConfigError, match="does not hold") as caught:
        Attestor.from_file(bad)
    assert "0123" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot be read"):
        Attestor.from_file(tmp_path / "missing.key")
    with pytest.raises(ConfigError, match="exactly one"):
        Attestor.from_settings()
    with pytest.raises(ConfigError, match="valid secp256k1"):
        Attestor("0x" + "00" * 32)


def completed_event() -> InferenceCompleted:
    prompt = render("task-planner@1", "send 1 ether to 0x" + "ab" * 20)
    request = prompt.to_input("omc-local-planner", {}, tool_schemas())
    record = asyncio.run(infer(LocalPlanner(), request, Attestor(KEY),
                               "6f1c1c54-0e5d-5a0e-9d7a-7c9a1f9b2a11"))
    assert record.prompt_hash == prompt.prompt_hash
    return InferenceCompleted(meta=meta(), task_id="t", **record.fields())


def test_infer_gives_a_valid_signed_event_that_verifies() -> None:
    event = completed_event()
    event.to_avro()  # every value format holds
    assert event.provider == "local-planner"
    assert event.model == "omc-local-planner"
    assert event.cost_usd == "0"
    assert event.tool_calls[0].name == "transfer_native"
    assert verify_inference(event)
    assert completed_event() == event  # deterministic, signature included


@pytest.mark.parametrize("change", [
    {"response": "something else"},
    {"model": "gpt-4o"},
    {"parameters_json": '{"temperature":1}'},
    {"prompt_hash": "0x" + "22" * 32},
    {"inference_id": "another"},
    {"tool_calls": (ToolCall(call_id="x", name="transfer_native", arguments_json="{}"),)},
    {"signer": Account.create().address},
    {"signature": "0x" + "00" * 65},
    {"signature": "0x12"},
])
def test_any_tampering_fails_verification(change: dict) -> None:
    assert not verify_inference(dataclasses.replace(completed_event(), **change))


def test_a_consistent_forgery_by_another_key_names_another_signer() -> None:
    event = completed_event()
    forger = Attestor("0x" + "5d" * 32)
    forged = dataclasses.replace(event, signature=forger.sign(event.digest))
    assert not verify_inference(forged)
    assert verify_inference(dataclasses.replace(forged, signer=forger.address))


def test_failed_fields_and_output_round_trip() -> None:
    error = InferenceError("openai model m: HTTP 500", error_type="http_500", retryable=True,
                           attempts=4)
    fields = failed(error, InferenceInput(model="m"))
    assert fields == {"model": "m", "error_type": "http_500",
                      "error_message": "openai model m: HTTP 500", "attempts": 4,
                      "retryable": True}
    output = InferenceOutput(model="m", response_text="hi",
                             tool_calls=(ToolCallOut("c", "get_balance", "{}"),),
                             prompt_tokens=3, completion_tokens=4,
                             cost_usd=Decimal("0.0003750"), latency_ms=12)
    assert InferenceOutput.from_dict(json.loads(json.dumps(output.to_dict()))) == output
    assert decimal_text(Decimal("0.0003750")) == "0.000375"
    assert decimal_text(Decimal("1E-7")) == "0.0000001"
    assert decimal_text(Decimal("120")) == "120"
    assert decimal_text(Decimal("0E-10")) == "0"
