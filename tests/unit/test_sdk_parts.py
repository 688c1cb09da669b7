"""The SDK's pure parts: settings, the retry policy, the SSE decoder, items, problem mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from omc_errors import ConfigError, OmcError
from omc_sdk import (
    DEFAULT_API_URL,
    Accepted,
    ClientSettings,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    OmcApiError,
    OmcClientError,
    Policy,
    ProtocolError,
    RateLimited,
    RetryPolicy,
    ServerError,
    SettingsError,
    Task,
    TaskEvent,
    Unauthorized,
    Unavailable,
    routes,
)
from omc_sdk.errors import api_error
from omc_sdk.retry import may_retry_transport, parse_retry_after
from omc_sdk.sse import SSEDecoder

# -- settings ---------------------------------------------------------------------------------


def test_settings_come_from_arguments_then_the_environment_then_the_default():
    env = {"OMC_API_URL": "https://gw.example/", "OMC_API_KEY": " omc_abc_def \n"}
    assert ClientSettings.resolve(env=env) == ClientSettings("https://gw.example", "omc_abc_def")
    assert ClientSettings.resolve("http://h:1", "k", env=env) == ClientSettings("http://h:1", "k")
    assert ClientSettings.resolve(env={}) == ClientSettings(DEFAULT_API_URL, None)


def test_a_bad_url_is_a_settings_error_that_names_the_variable():
    with pytest.raises(SettingsError, match="OMC_API_URL='ftp://x'") as caught:
        ClientSettings.resolve(env={"OMC_API_URL": "ftp://x"})
    assert isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, OmcClientError)
    with pytest.raises(SettingsError, match="api_key"):
        ClientSettings.resolve(api_key="omc_a b", env={})


def test_the_key_never_shows_in_a_repr():
    settings = ClientSettings.resolve(api_key="omc_0123456789ab_secretsecret", env={})
    assert "secret" not in repr(settings)
    assert settings.key_id == "0123456789ab"


# -- retries ----------------------------------------------------------------------------------


def test_backoff_is_exponential_capped_and_jittered_within_half_to_all():
    low = RetryPolicy(retries=10, backoff=0.5, max_backoff=4.0, rng=lambda: 0.0)
    high = RetryPolicy(retries=10, backoff=0.5, max_backoff=4.0, rng=lambda: 1.0)
    assert [low.delay(n) for n in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [high.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_retry_after_is_a_floor_and_too_long_a_wait_is_left_to_the_caller():
    policy = RetryPolicy(retries=3, max_retry_after=60, rng=lambda: 0.0)
    assert policy.retry_status(0, 429, 7.0) == 7.0
    assert policy.retry_status(0, 503, None) == 0.25
    assert policy.retry_status(0, 429, 61.0) is None
    assert policy.retry_status(3, 429, 1.0) is None  # out of retries


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 415, 422, 500, 502])
def test_other_statuses_are_never_retried(status):
    assert RetryPolicy().retry_status(0, status, 1.0) is None


def test_a_409_in_progress_is_waited_out_only_by_a_keyed_request():
    policy = RetryPolicy(rng=lambda: 0.0)
    assert policy.retry_status(0, 409, 1.0, idempotency_key=True) == 1.0
    assert policy.retry_status(0, 409, None, idempotency_key=True) is None  # another body
    assert policy.retry_status(0, 409, 1.0) is None


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_only_idempotent_requests_are_resent_after_no_answer():
    assert may_retry_transport("GET", {})
    assert may_retry_transport("PUT", {})
    assert not may_retry_transport("POST", {})
    assert may_retry_transport("POST", {"Idempotency-Key": "k"})


# -- server-sent events -----------------------------------------------------------------------


def test_sse_decoder_follows_the_standard():
    decoder = SSEDecoder()
    lines = [": keep-alive", "", "id: 1", "event: TaskStarted", "data: {\"a\":", "data:1}", "",
             "retry: 2500", "data: x", "", "event: ignored-without-data", "", "id: 3\0",
             "data:y", "bogus: field", ""]
    events = [e for e in map(decoder.feed, lines) if e is not None]
    assert [(e.id, e.event, e.data) for e in events] == [
        ("1", "TaskStarted", '{"a":\n1}'),
        ("1", "message", "x"),  # the id carries over; a NUL-bearing id is ignored
        ("1", "message", "y"),
    ]
    assert decoder.retry == 2500


# -- items ------------------------------------------------------------------------------------


def test_items_ignore_unknown_fields_and_keep_the_raw_mapping():
    data = {"task_id": "t1", "status": "completed", "tx_hashes": ["0xa"], "shiny_new": 1}
    task = Task.from_json(data)
    assert task == Task(task_id="t1", status="completed", tx_hashes=("0xa",))
    assert task.raw == data
    assert task.is_terminal
    with pytest.raises(AttributeError):
        task.status = "running"  # frozen


def test_an_item_without_its_identity_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="TaskEvent without sequence"):
        TaskEvent.from_json({"event_type": "TaskStarted"})
    with pytest.raises(ProtocolError, match="JSON object"):
        Task.from_json(["t1"])


def test_a_policy_goes_back_as_it_came_and_amounts_stay_strings():
    data = {"version": 2, "allowed_chain_ids": [31337], "max_value_wei": "10", "later": True}
    policy = Policy.from_json(data)
    assert policy.allowed_chain_ids == (31337,)
    assert policy.max_value_wei == "10"
    assert policy.to_json() == data
    assert Policy(version=1, max_value_wei="5").to_json()["allowed_chain_ids"] == []


def test_accepted_is_read_from_the_body_and_the_location():
    assert Accepted.from_json({"command_id": "c"}).status == "accepted"


def test_wei_is_never_a_float():
    assert routes.wei(10**30, "v") == str(10**30)
    with pytest.raises(TypeError, match="decimal string"):
        routes.wei(1.5, "v")  # type: ignore[arg-type]


def test_ids_cannot_climb_out_of_their_path_segment():
    assert routes.get_task("../agents").path == "/v1/tasks/..%2Fagents"
    with pytest.raises(ValueError, match="empty"):
        routes.get_task("")


def test_idempotency_keys_are_fresh_uuid4s_unless_given_and_checked():
    first = routes.cancel_task("t", "r").headers["Idempotency-Key"]
    assert first != routes.cancel_task("t", "r").headers["Idempotency-Key"]
    assert routes.cancel_task("t", "r", idempotency_key="mine").headers == {
        "Idempotency-Key": "mine"}
    with pytest.raises(ValueError, match="1-200"):
        routes.cancel_task("t", "r", idempotency_key="x" * 201)


# -- problems ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "cls"), [
    (400, InvalidRequest), (401, Unauthorized), (403, Forbidden), (404, NotFound),
    (409, Conflict), (413, InvalidRequest), (415, InvalidRequest), (422, InvalidRequest),
    (429, RateLimited), (500, ServerError), (502, ServerError), (503, Unavailable),
    (418, OmcApiError),
])
def test_each_status_maps_to_its_error_class(status, cls):
    error = api_error(status, b"")
    assert type(error) is cls
    assert isinstance(error, OmcError)


def test_a_problem_keeps_every_detail_and_says_them_all():
    body = (b'{"type": "https://openmcp-chain.dev/problems/invalid-body", "title": "Invalid body",'
            b' "status": 422, "detail": "2 problems", "instance": "/v1/tasks", "errors": ['
            b'{"field": "policy.max_value_wei", "problem": "is not a non-negative integer"},'
            b'{"field": "colour", "problem": "is not a known field"}]}')
    error = api_error(422, body)
    assert (error.status, error.slug, error.title, error.detail, error.instance) == (
        422, "invalid-body", "Invalid body", "2 problems", "/v1/tasks")
    assert [(e.field, e.problem) for e in error.errors] == [
        ("policy.max_value_wei", "is not a non-negative integer"),
        ("colour", "is not a known field")]
    assert str(error) == ("422 Invalid body (invalid-body): 2 problems\n"
                          "  - policy.max_value_wei: is not a non-negative integer\n"
                          "  - colour: is not a known field")


def test_an_error_without_a_problem_body_still_maps():
    error = api_error(502, b"<html>bad gateway</html>", reason="Bad Gateway")
    assert isinstance(error, ServerError)
    assert str(error) == "502 Bad Gateway: <html>bad gateway</html>"
