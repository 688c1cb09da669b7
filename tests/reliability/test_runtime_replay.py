"""Replay never calls the model: a runtime whose LLM endpoint is unreachable rebuilds every
task from the log (its views, folded from offset 0) and ends in the same states, having made
no call and written nothing. The model is the real OpenAI-compatible adapter pointed at a
port where nothing listens, so a call, if one were made, would fail and be recorded.

The last test shows the check can fail: an inference whose intent was recorded but whose
result was not (a crash during the call) IS called again after the restart, and with the
endpoint unreachable that attempt is recorded as InferenceFailed.
"""

from __future__ import annotations

import asyncio
import socket

from omc_events.records import (
    InferenceFailed,
    InferenceRequested,
    TaskCompleted,
    TaskFailed,
    TaskFailureCode,
)
from omc_llm.model import InferenceInput, InferenceOutput
from omc_llm.openai_adapter import OpenAIModel
from tests.support.runtime_harness import BOB, CAROL, RuntimeHarness, make_policy


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


class Counting:
    """A LanguageModel that counts the calls it passes on."""

    def __init__(self, model) -> None:
        self.model = model
        self.name = model.name
        self.calls = 0

    async def complete(self, request: InferenceInput) -> InferenceOutput:
        self.calls += 1
        return await self.model.complete(request)


def unreachable() -> Counting:
    return Counting(OpenAIModel(base_url=f"http://127.0.0.1:{closed_port()}/v1",
                                api_key="sk-test-not-a-key", provider_name="unreachable",
                                timeout=2.0, max_retries=0))


def total(harness: RuntimeHarness) -> int:
    return sum(len(records) for records in harness.writer.topics.values())


def test_a_replay_with_the_llm_unreachable_rebuilds_every_task_without_a_call() -> None:
    async def scenario():
        harness = RuntimeHarness(balances={BOB: 7, CAROL: 11})
        policy = make_policy()
        for instruction in (f"what is the balance of {BOB}", f"balance of {CAROL}",
                            "tell me a joke", f"send 0.1 ether to {BOB}"):
            await harness.run(instruction, policy)
        (request,) = harness.tx_requests()
        harness.confirm(request.request_id)
        await harness.settle()
        live = dict(harness.runtime.tasks.states)
        written = total(harness)

        model = unreachable()
        harness.runtime.model = model
        harness.restart()
        await harness.settle()
        return harness, live, written, model

    harness, live, written, model = asyncio.run(scenario())

    assert model.calls == 0
    assert total(harness) == written  # nothing was written by the replay
    assert harness.runtime.tasks.states == live
    ends = [type(state.inferences[-1].completed).__name__ for state in live.values()]
    assert len(live) == 4
    assert all(e == "InferenceCompleted" for e in ends)


def test_an_inference_recorded_without_its_result_is_asked_again_after_a_restart() -> None:
    class Crashing:
        name = "crashing"

        async def complete(self, request: InferenceInput) -> InferenceOutput:
            raise RuntimeError("the process died during the call")

    async def scenario():
        harness = RuntimeHarness(model=Crashing(), strict=False)
        await harness.run(f"what is the balance of {BOB}", make_policy())
        model = unreachable()
        harness.runtime.model = model
        harness.restart()
        await harness.settle()
        return harness, model

    harness, model = asyncio.run(scenario())

    events = harness.task_events()
    assert model.calls == 1
    assert [type(e) for e in events[:2]] == [type(events[0]), InferenceRequested]
    failed = [e for e in events if isinstance(e, InferenceFailed)]
    assert len(failed) == 1
    assert failed[0].error_type == "unreachable"
    assert isinstance(events[-1], TaskFailed)
    assert events[-1].code == TaskFailureCode.INFERENCE_FAILED
    assert not any(isinstance(e, TaskCompleted) for e in events)
