"""Where the gateway is and which key to present: from arguments, else the environment.

    OMC_API_URL   the gateway's base URL (default http://127.0.0.1:18080, the local stack's)
    OMC_API_KEY   `omc_<key_id>_<secret>`, from `omc keys create`

Read when a client is built, never at import; a bad value fails then, naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from omc_sdk.errors import SettingsError

DEFAULT_API_URL = "http://127.0.0.1:18080"


@dataclass(frozen=True)
class ClientSettings:
    """The gateway's base URL and the API key (None: no key; only health routes will work)."""

    base_url: str
    api_key: str | None

    def __repr__(self) -> str:  # the key never appears in logs or tracebacks
        key = "'***'" if self.api_key else "None"
        return f"ClientSettings(base_url={self.base_url!r}, api_key={key})"

    @property
    def key_id(self) -> str | None:
        """The public part of the key (`omc_<key_id>_...`), fine to print."""
        if self.api_key and self.api_key.count("_") >= 2 and self.api_key.startswith("omc_"):
            return self.api_key.split("_", 2)[1]
        return None

    @classmethod
    def resolve(
        cls,
        base_url: str | None = None,
        api_key: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ClientSettings:
        env = os.environ if env is None else env
        problems = []
        url = (base_url or env.get("OMC_API_URL") or DEFAULT_API_URL).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            where = "base_url" if base_url else "OMC_API_URL"
            problems.append(f"{where}={url!r} is not an http(s) URL such as {DEFAULT_API_URL}")
        key = (api_key if api_key is not None else env.get("OMC_API_KEY", "")).strip() or None
        if key is not None and (not key.isascii() or not key.isprintable() or " " in key):
            where = "api_key" if api_key is not None else "OMC_API_KEY"
            problems.append(f"{where} holds characters an API key never has (spaces, controls)")
        if problems:
            raise SettingsError(problems)
        return cls(base_url=url.rstrip("/"), api_key=key)
