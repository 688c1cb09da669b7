"""API keys: `omc_<key_id>_<secret>`, stored as SHA-256 of the secret in `api_keys`.

    key_id   12 lowercase hex digits (public: logged, recorded as actor "key:<key_id>")
    secret   43 base64url characters (32 random bytes); shown once, never stored or logged
    row      key_id, secret_sha256, tenant, scopes (comma-separated), name, created_at,
             revoked_at (NULL while the key is valid)

The table's functions take a connection first (sync, mysql.connector); `CachedKeyStore`
serves the app: a key looked up is trusted for `ttl` seconds, and while MySQL is down a key
seen before keeps working (commands are accepted while MySQL is down), so only a key never
seen since the gateway started needs MySQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from omc_config import Settings
from omc_errors import OmcError
from omc_gateway.commands import Principal
from omc_gateway.errors import Unauthorized, Unavailable
from omc_store import migrate as migrations

log = logging.getLogger("omc.gateway.keys")

SCOPES = ("commands:write", "queries:read", "audit:read", "approver", "admin")
TOKEN = re.compile(r"omc_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
TENANT = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
SQL_DIR = Path(__file__).parent / "sql"
COMPONENT = "gateway"


class ApiKeyError(OmcError):
    """A key cannot be created or changed as asked."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    secret_sha256: str
    tenant: str
    scopes: frozenset[str]
    name: str | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def principal(self) -> Principal:
        return Principal(self.key_id, self.tenant, self.scopes)

    def to_json(self) -> dict[str, Any]:
        """What `omc keys list` shows: never the secret nor its hash."""
        return {"key_id": self.key_id, "tenant": self.tenant, "scopes": sorted(self.scopes),
                "name": self.name, "created_at": _utc(self.created_at),
                "revoked_at": _utc(self.revoked_at)}


def _utc(when: datetime | None) -> str | None:
    """MySQL gives naive datetimes in the session's zone, which is UTC."""
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat().replace("+00:00",
                                                                                   "Z")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed key, else None."""
    match = TOKEN.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def new_token() -> tuple[str, str, str]:
    """(token, key_id, secret) of a new random key."""
    key_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"omc_{key_id}_{secret}", key_id, secret


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(s.strip() for s in scopes if s.strip())
    unknown = sorted(chosen - set(SCOPES))
    if unknown:
        raise ApiKeyError(f"unknown scope(s) {', '.join(unknown)}; the scopes are "
                        f"{', '.join(SCOPES)}")
    if not chosen:
        raise ApiKeyError(f"give at least one scope of {', '.join(SCOPES)}")
    return chosen


def check_tenant(tenant: str) -> str:
    if not TENANT.fullmatch(tenant):
        raise ApiKeyError(f"tenant {tenant!r} is not a tenant name: 1-64 of a-z, 0-9, '.', '_', "
                        "'-', starting with a letter or digit")
    return tenant


# -- the table ------------------------------------------------------------------------------


def migrate(settings: Settings) -> list[str]:
    """Apply the gateway's migrations (`sql/`) to the settings' database; the names applied."""
    from omc_store.mysql import connect

    connection = connect(settings)
    try:
        done = migrations.apply(connection, migrations.discover(COMPONENT, SQL_DIR))
    finally:
        connection.close()
    return [f"{m.component} V{m.version}__{m.name}" for m in done]


_COLUMNS = "key_id, secret_sha256, tenant, scopes, name, created_at, revoked_at"


def _row(row: tuple[Any, ...]) -> ApiKey:
    key_id, secret_sha256, tenant, scopes, name, created_at, revoked_at = row
    return ApiKey(key_id, secret_sha256, tenant, frozenset(filter(None, scopes.split(","))),
                  name, created_at, revoked_at)


def create_key(connection, tenant: str, scopes: Iterable[str],
               name: str | None = None) -> tuple[str, ApiKey]:
    """Insert a new key; returns (the token, shown once; its row)."""
    tenant, chosen = check_tenant(tenant), check_scopes(scopes)
    token, key_id, secret = new_token()
    cursor = connection.cursor()
    cursor.execute("INSERT INTO api_keys (key_id, secret_sha256, tenant, scopes, name)"
                   " VALUES (%s, %s, %s, %s, %s)",
                   (key_id, digest(secret), tenant, ",".join(sorted(chosen)), name))
    connection.commit()
    found = find_key(connection, key_id)
    assert found is not None
    return token, found


def find_key(connection, key_id: str) -> ApiKey | None:
    cursor = connection.cursor()
    cursor.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = %s", (key_id,))  # noqa: S608
    row = cursor.fetchone()
    connection.rollback()  # end the read's snapshot: the next lookup sees new rows
    return _row(row) if row else None


def list_keys(connection, tenant: str | None = None) -> list[ApiKey]:
    cursor = connection.cursor()
    if tenant is None:
        cursor.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id")  # noqa: S608
    else:
        cursor.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE tenant = %s"  # noqa: S608
                       " ORDER BY created_at, key_id", (tenant,))
    rows = cursor.fetchall()
    connection.rollback()
    return [_row(row) for row in rows]


def revoke_key(connection, key_id: str) -> ApiKey:
    """Mark the key revoked (idempotent); `ApiKeyError` if there is no such key."""
    cursor = connection.cursor()
    cursor.execute("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP(6)"
                   " WHERE key_id = %s AND revoked_at IS NULL", (key_id,))
    connection.commit()
    found = find_key(connection, key_id)
    if found is None:
        raise ApiKeyError(f"there is no API key {key_id!r}; `omc keys list` shows them")
    return found


# -- the app's key store ----------------------------------------------------------------------


class CachedKeyStore:
    """`KeyStore` over a lookup function (key_id -> ApiKey | None, blocking, run in a thread;
    raises `Unavailable` when MySQL is down)."""

    NEGATIVE_TTL = 5.0

    def __init__(self, lookup: Callable[[str], ApiKey | None], *, ttl: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lookup = lookup
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}

    async def authenticate(self, token: str) -> Principal:
        parsed = parse_token(token)
        if parsed is None:
            raise Unauthorized("The API key is malformed: expected omc_<key id>_<secret>.")
        key_id, secret = parsed
        key = await self._key(key_id)
        if key is None or not hmac.compare_digest(key.secret_sha256, digest(secret)):
            raise Unauthorized("The API key is not known.")
        if key.revoked_at is not None:
            raise Unauthorized("The API key was revoked.")
        return key.principal()

    async def _key(self, key_id: str) -> ApiKey | None:
        now = self.clock()
        cached = self._cache.get(key_id)
        if cached is not None:
            key, at = cached
            if now - at < (self.ttl if key is not None else min(self.ttl, self.NEGATIVE_TTL)):
                return key
        try:
            key = await anyio.to_thread.run_sync(self.lookup, key_id)
        except Unavailable:
            if cached is not None and cached[0] is not None:
                log.warning("MySQL is down: trusting API key %s as last seen", key_id)
                return cached[0]
            raise
        self._cache[key_id] = (key, now)
        return key
