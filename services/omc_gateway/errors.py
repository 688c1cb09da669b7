"""The gateway's errors: each is one problem type of RFC 9457, answered as
`application/problem+json` (`{"type", "title", "status", "detail", "instance", ...}`).

    OmcError                              (omc_errors) the project's root
    └── GatewayError                      a request the gateway refuses or cannot serve
        ├── InvalidJson             400   invalid-json: the body is not one JSON object
        ├── Unauthorized            401   unauthorized: no key, a malformed, unknown or
        │                                 revoked key (WWW-Authenticate: Bearer)
        ├── Forbidden               403   forbidden: the key lacks the route's scope
        ├── NotFound                404   not-found: no such route, or no such aggregate for
        │                                 the key's tenant (never 403: no existence leaks)
        ├── MethodNotAllowed        405   method-not-allowed (Allow)
        ├── IdempotencyConflict     409   idempotency-conflict: the key was used with another
        │                                 body, or its first request is still in progress
        ├── BodyTooLarge            413   body-too-large
        ├── UnsupportedMediaType    415   unsupported-media-type: a body that is not JSON
        ├── InvalidBody             422   invalid-body: `errors[]` names each bad field
        ├── InvalidParameters       422   invalid-parameters: path, query or header values,
        │                                 `errors[]` names each one
        ├── RateLimited             429   rate-limited (Retry-After)
        ├── Internal                500   internal: no details (the log has them)
        └── Unavailable             503   unavailable: Kafka, MySQL or Redis did not answer
                                          (Retry-After); `dependency` names which

Third-party errors (mysql.connector, redis, confluent_kafka) are translated into these by
the adapters that call them (readmodel, redisports, publisher, apikeys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omc_errors import OmcError

PROBLEM_BASE = "https://openmcp-chain.dev/problems/"
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class FieldError:
    """One entry of a problem's `errors[]`."""

    field: str
    problem: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class GatewayError(OmcError):
    """A refused request; `str()` is the problem's `detail`, written for the caller."""

    status = 500
    slug = "internal"
    title = "Internal error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None,
                 **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    def problem(self, instance: str) -> dict[str, Any]:
        return {"type": PROBLEM_BASE + self.slug, "title": self.title, "status": self.status,
                "detail": self.detail, "instance": instance, **self.extensions}


class InvalidJson(GatewayError):
    status, slug, title = 400, "invalid-json", "The body is not valid JSON"


class Unauthorized(GatewayError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="omc"'})


class Forbidden(GatewayError):
    status, slug, title = 403, "forbidden", "Missing scope"


class NotFound(GatewayError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(GatewayError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class IdempotencyConflict(GatewayError):
    status, slug, title = 409, "idempotency-conflict", "Idempotency-Key conflict"


class BodyTooLarge(GatewayError):
    status, slug, title = 413, "body-too-large", "Body too large"


class UnsupportedMediaType(GatewayError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class _FieldErrors(GatewayError):
    status = 422

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        fields = ", ".join(dict.fromkeys(e.field for e in errors))
        super().__init__(detail or f"Invalid {self.noun}: {fields}.",
                         errors=[e.to_json() for e in errors])
        self.errors = errors

    noun = "fields"


class InvalidBody(_FieldErrors):
    slug, title, noun = "invalid-body", "Invalid body", "fields"


class InvalidParameters(_FieldErrors):
    slug, title, noun = "invalid-parameters", "Invalid parameters", "parameters"


class RateLimited(GatewayError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, limit: int, window: int, retry_after: int) -> None:
        super().__init__(
            f"This API key made more than {limit} requests in {window} s; "
            f"retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)})


class Internal(GatewayError):
    status, slug, title = 500, "internal", "Internal error"

    def __init__(self) -> None:
        super().__init__("The gateway failed to answer; the failure is logged.")


class Unavailable(GatewayError):
    status, slug, title = 503, "unavailable", "Service unavailable"

    def __init__(self, dependency: str, detail: str, *, retry_after: int = 5,
                 **extensions: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)},
                         dependency=dependency, **extensions)
        self.dependency = dependency
