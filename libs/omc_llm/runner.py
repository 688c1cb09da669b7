"""Glue from a model call to the fields of InferenceCompleted / InferenceFailed. No Kafka here.

    await infer(model, request, attestor, inference_id) -> CompletedInference
        .fields()  -> the InferenceCompleted keyword arguments except meta and task_id
    failed(error, request)  -> the InferenceFailed keyword arguments except meta, task_id,
                               inference_id

The prompt hash is that of the request's messages (`prompt.prompt_hash_of`), the parameters are
their canonical JSON, latency is the adapter's own figure (0 for the local planner, so its
events are byte-for-byte reproducible), the digest is `attest.inference_digest` and the
signature the attestor's. An InferenceError from the model propagates unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omc_events.records import ToolCall
from omc_llm.attest import Attestor, inference_digest
from omc_llm.canonical import decimal_text
from omc_llm.model import InferenceError, InferenceInput, InferenceOutput, LanguageModel
from omc_llm.prompt import prompt_hash_of


@dataclass(frozen=True, slots=True)
class CompletedInference:
    """A signed answer: every InferenceCompleted field but meta and task_id."""

    inference_id: str
    model: str
    provider: str
    parameters_json: str
    prompt_hash: str
    response: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: str
    latency_ms: int
    cache_hit: bool
    digest: str
    signer: str
    signature: str

    def fields(self) -> dict[str, Any]:
        """Keyword arguments for `InferenceCompleted(meta=…, task_id=…, **fields)`."""
        return {name: getattr(self, name) for name in self.__slots__}


def attest(output: InferenceOutput, request: InferenceInput, provider: str,
           attestor: Attestor, inference_id: str) -> CompletedInference:
    """The signed record of `output` as the answer to `request`."""
    parameters_json = request.parameters_json
    prompt_hash = prompt_hash_of(request.messages)
    calls = tuple(ToolCall(call_id=c.call_id, name=c.name, arguments_json=c.arguments_json)
                  for c in output.tool_calls)
    digest = inference_digest(inference_id, output.model, parameters_json, prompt_hash,
                              output.response_text, calls)
    return CompletedInference(
        inference_id=inference_id, model=output.model, provider=provider,
        parameters_json=parameters_json, prompt_hash=prompt_hash,
        response=output.response_text, tool_calls=calls, finish_reason=output.finish_reason,
        prompt_tokens=output.prompt_tokens, completion_tokens=output.completion_tokens,
        cost_usd=decimal_text(output.cost_usd), latency_ms=output.latency_ms,
        cache_hit=output.cache_hit, digest=digest, signer=attestor.address,
        signature=attestor.sign(digest))


async def infer(model: LanguageModel, request: InferenceInput, attestor: Attestor,
                inference_id: str) -> CompletedInference:
    """Ask `model` and sign its answer; InferenceError when the model cannot answer."""
    output = await model.complete(request)
    return attest(output, request, model.name, attestor, inference_id)


def failed(error: InferenceError, request: InferenceInput) -> dict[str, Any]:
    """Keyword arguments for InferenceFailed(meta=…, task_id=…, inference_id=…, **failed)."""
    return {"model": request.model, "error_type": error.error_type,
            "error_message": str(error), "attempts": error.attempts,
            "retryable": error.retryable}
