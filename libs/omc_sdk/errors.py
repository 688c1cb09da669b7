"""The errors `omc_sdk` raises: one tree under the project's root, `omc_errors.OmcError`.

    OmcError                        (omc_errors) the project's root; `omc` prints it, exits 1
    └── OmcClientError              everything this SDK raises on purpose
        ├── SettingsError           bad base URL or key (also an omc_errors.ConfigError)
        ├── InvalidArgument         a value the API cannot take, caught before sending
        │                           (also a ValueError): an empty id, a limit out of range
        ├── TransportError          no HTTP answer: refused, reset, timed out, stream broken
        ├── ProtocolError           an answer that does not follow docs/api.md
        └── OmcApiError             the gateway answered with a problem (RFC 9457):
            │                       .status .type .title .detail .instance .errors[]
            ├── InvalidRequest      400, 413, 415, 422: the request must change
            ├── Unauthorized        401: no key, or a key the gateway does not know
            ├── Forbidden           403: the key lacks the route's scope
            ├── NotFound            404: no such aggregate for this key's tenant
            ├── Conflict            409: the Idempotency-Key was used with another body
            │                       (or its first request was still running, after retries)
            ├── RateLimited         429: .retry_after seconds (retried first, then raised)
            ├── ServerError         500 and other 5xx but 503
            └── Unavailable         503: .retry_after seconds (retried first, then raised)

httpx's exceptions never escape: they are translated here, at the boundary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omc_errors import ConfigError, OmcError

PROBLEM_BASE = "https://openmcp-chain.dev/problems/"


class OmcClientError(OmcError):
    """Root of the SDK's errors."""


class SettingsError(OmcClientError, ConfigError):
    """The client's settings (arguments or OMC_API_URL / OMC_API_KEY) are unusable."""


class InvalidArgument(OmcClientError, ValueError):
    """An argument the API would refuse; nothing was sent."""


class TransportError(OmcClientError):
    """The request got no HTTP answer (after the retries it was allowed)."""


class ProtocolError(OmcClientError):
    """The gateway answered something the contract (docs/api.md) does not allow."""


@dataclass(frozen=True)
class FieldProblem:
    """One entry of a problem's `errors[]`: which field, and what is wrong with it."""

    field: str
    problem: str


class OmcApiError(OmcClientError):
    """The gateway refused the request with an `application/problem+json` answer."""

    def __init__(
        self,
        status: int,
        *,
        type: str = "about:blank",  # RFC 9457's member name
        title: str = "",
        detail: str = "",
        instance: str | None = None,
        errors: Sequence[FieldProblem] = (),
        retry_after: float | None = None,
        body: Mapping[str, Any] | None = None,
        hint: str = "",
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.instance = instance
        self.errors = tuple(errors)
        self.retry_after = retry_after
        self.body: Mapping[str, Any] = dict(body or {})
        self.hint = hint
        super().__init__(self._message())

    @property
    def slug(self) -> str:
        """The problem type's last segment (`not-found`, `invalid-body`, ...)."""
        return self.type.rsplit("/", 1)[-1]

    def _message(self) -> str:
        head = f"{self.status} {self.title or 'error'}"
        if self.type.startswith(PROBLEM_BASE):
            head += f" ({self.slug})"
        lines = [f"{head}: {self.detail}" if self.detail else head]
        lines += [f"  - {e.field}: {e.problem}" for e in self.errors]
        if self.retry_after is not None:
            lines.append(f"  retry after {self.retry_after:g}s")
        if self.hint:
            lines.append(f"  {self.hint}")
        return "\n".join(lines)


class InvalidRequest(OmcApiError):
    """400, 413, 415 or 422: the request itself is wrong; `errors` names the fields."""


class Unauthorized(OmcApiError):
    """401: the API key is missing or unknown."""


class Forbidden(OmcApiError):
    """403: the API key does not have the scope the route needs."""


class NotFound(OmcApiError):
    """404: no such resource for this key's tenant."""


class Conflict(OmcApiError):
    """409: the Idempotency-Key was already used with another body."""


class RateLimited(OmcApiError):
    """429: too many requests for this key; `retry_after` says when to come back."""


class ServerError(OmcApiError):
    """A 5xx other than 503: the gateway failed; it gives no details."""


class Unavailable(OmcApiError):
    """503: a dependency of the gateway (Kafka, MySQL, Redis) is down; try again later."""


_BY_STATUS: dict[int, type[OmcApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    503: Unavailable,
}


def error_class(status: int) -> type[OmcApiError]:
    """The exception class for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else OmcApiError


def api_error(
    status: int,
    content: bytes,
    *,
    reason: str = "",
    retry_after: float | None = None,
    hint: str = "",
) -> OmcApiError:
    """Build the typed error for an error answer; a body that is not a problem still maps."""
    try:
        body = json.loads(content) if content else {}
    except (ValueError, UnicodeDecodeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    problems = []
    raw_errors = body.get("errors")
    if isinstance(raw_errors, list):
        for entry in raw_errors:
            if isinstance(entry, Mapping):
                problems.append(FieldProblem(str(entry.get("field", "")),
                                             str(entry.get("problem", ""))))
            else:
                problems.append(FieldProblem("", str(entry)))
    detail = body.get("detail")
    if detail is None and not body and content:
        detail = content[:200].decode("utf-8", "replace").strip()
    return error_class(status)(
        status,
        type=str(body.get("type") or "about:blank"),
        title=str(body.get("title") or reason),
        detail=str(detail or ""),
        instance=body.get("instance") if isinstance(body.get("instance"), str) else None,
        errors=problems,
        retry_after=retry_after,
        body=body,
        hint=hint,
    )
