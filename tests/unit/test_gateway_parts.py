"""The gateway's pure parts: field checks, settings, API keys, command ids, trace context."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from omc_errors import ConfigError
from omc_gateway.apikeys import (
    ApiKeyError,
    CachedKeyStore,
    check_scopes,
    check_tenant,
    digest,
    new_token,
    parse_token,
)
from omc_gateway.commands import command_id, trace_context
from omc_gateway.errors import Unauthorized, Unavailable
from omc_gateway.fields import (
    INVALID,
    Address,
    Integer,
    JsonObject,
    Timestamp,
    Uuid,
    Wei,
)
from omc_gateway.memory import MemoryKeyTable
from omc_gateway.settings import GatewaySettings


def check(kind, value):
    problems = []
    result = kind.check(value, "f", problems)
    return result, [p.problem for p in problems]


@pytest.mark.parametrize(("value", "expected"), [
    ("0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
    ("0x70997970C51812DC3A010C7D01B50E0D17DC79C8", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
    ("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
])
def test_addresses_are_answered_checksummed(value: str, expected: str) -> None:
    assert check(Address(), value) == (expected, [])


def test_a_wrong_checksum_and_a_wrong_length_are_refused() -> None:
    assert check(Address(), "0x70997970C51812dc3A010C7d01b50e0d17dc79c8")[0] is INVALID
    assert check(Address(), "0x7099")[1] == ["is not an address (0x and 40 hex digits)"]
    assert check(Address(), None)[1] == ["must be a string, not null"]


def test_wei_bounds() -> None:
    assert check(Wei(), str(2**256 - 1)) == (str(2**256 - 1), [])
    assert check(Wei(), "0") == ("0", [])
    assert check(Wei(), str(2**256))[1] == ["is larger than 2**256 - 1"]
    assert check(Wei(), "1e18")[0] is INVALID


def test_uuids_are_lowercased() -> None:
    value = str(uuid.uuid4())
    assert check(Uuid(), value.upper()) == (value, [])


def test_integers_are_json_integers() -> None:
    assert check(Integer(1, 10), 3) == (3, [])
    assert check(Integer(1, 10), 3.0)[1] == ["must be an integer, not a number"]
    assert check(Integer(1, 10), float("inf"))[1] == ["must be an integer, not a number"]
    problems = []
    assert Integer(0, 10).check_text("+3", "limit", problems) is INVALID
    assert Integer(0, 10).check_text("07", "limit", []) == 7


def test_timestamps_are_utc_and_checked_for_the_future() -> None:
    when, problems = check(Timestamp(), "2030-01-01T02:00:00.1234567+02:00")
    assert problems == []
    assert when == datetime(2030, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert check(Timestamp(), "2030-02-30T00:00:00Z")[0] is INVALID
    assert check(Timestamp(), "9999-12-31T23:59:59-23:59")[1] == ["is out of range"]


def test_json_objects_are_kept_canonical() -> None:
    assert check(JsonObject(max_bytes=100), {"b": "é", "a": 1}) == ('{"a":1,"b":"é"}', [])


def test_settings_name_every_bad_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        GatewaySettings.from_env({"OMC_GATEWAY_MAX_BODY": "big", "OMC_GATEWAY_RATE_LIMIT": "0",
                                  "OMC_GATEWAY_PORT": "99999"})

    message = str(raised.value)
    assert "OMC_GATEWAY_MAX_BODY='big' is not an integer from 256 to 6.71089e+07" in message
    assert "OMC_GATEWAY_RATE_LIMIT='0' is not an integer from 1 to 1e+09" in message
    assert "OMC_GATEWAY_PORT='99999' is not a port number" in message


def test_settings_defaults() -> None:
    settings = GatewaySettings.from_env({})

    assert (settings.host, settings.port, settings.max_body) == ("127.0.0.1", 18080, 65536)
    assert (settings.rate_limit, settings.rate_window) == (600, 60)
    assert settings.idempotency_ttl == 86400


def test_tokens_have_the_documented_shape_and_never_repeat() -> None:
    token, key_id, secret = new_token()

    assert parse_token(token) == (key_id, secret)
    assert len(key_id) == 12
    assert len(secret) == 43
    assert new_token()[0] != token
    assert parse_token("omc_0123456789AB_" + "a" * 43) is None
    assert parse_token(token + "x") is None


def test_scopes_and_tenants_are_checked() -> None:
    assert check_scopes(["queries:read", " admin "]) == {"queries:read", "admin"}
    with pytest.raises(ApiKeyError, match="unknown scope"):
        check_scopes(["root"])
    with pytest.raises(ApiKeyError, match="at least one scope"):
        check_scopes([""])
    assert check_tenant("acme-eu.1") == "acme-eu.1"
    with pytest.raises(ApiKeyError, match="not a tenant name"):
        check_tenant("Acme Corp")


def test_the_key_store_caches_and_falls_back_to_what_it_saw_while_mysql_is_down() -> None:
    table = MemoryKeyTable()
    token = table.create("acme", ["admin"])
    now = [0.0]
    store = CachedKeyStore(table.lookup, ttl=30, clock=lambda: now[0])

    async def run() -> None:
        assert (await store.authenticate(token)).tenant == "acme"
        table.down = True
        now[0] = 100.0  # past the ttl: it asks MySQL, which is down, and trusts what it saw
        assert (await store.authenticate(token)).scopes == {"admin"}
        other = table.create("globex", ["admin"])
        with pytest.raises(Unavailable):
            await store.authenticate(other)
        table.down = False
        table.revoke(token.split("_")[1])
        now[0] = 200.0
        with pytest.raises(Unauthorized, match="revoked"):
            await store.authenticate(token)

    asyncio.run(run())


def test_the_secret_is_stored_only_as_its_digest() -> None:
    table = MemoryKeyTable()
    token = table.create("acme", ["admin"])
    key_id, secret = parse_token(token)

    assert table.rows[key_id].secret_sha256 == digest(secret)
    assert secret not in repr(table.rows[key_id])
    assert "secret" not in str(table.rows[key_id].to_json())


def test_command_ids() -> None:
    assert command_id("k", "a") == command_id("k", "a")
    assert command_id("k", "a") != command_id("j", "a")
    assert command_id("k", None) != command_id("k", None)


@pytest.mark.parametrize(("parent", "state", "expected"), [
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "a=1",
     ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "a=1")),
    ("garbage", "a=1", (None, None)),
    (None, None, (None, None)),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x" * 600,
     ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None)),
])
def test_trace_context(parent, state, expected) -> None:
    assert trace_context(parent, state) == expected
