"""What the sync and async clients share besides the routes: settings, headers, the mapping
of answers to errors, and the bookkeeping of a followed stream. No I/O here either."""

from __future__ import annotations

import random
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import httpx

from omc_sdk import routes
from omc_sdk.config import ClientSettings
from omc_sdk.errors import InvalidArgument, OmcApiError, ProtocolError, TransportError, api_error
from omc_sdk.models import Page, TaskEvent
from omc_sdk.retry import RetryPolicy, parse_retry_after
from omc_sdk.sse import SSEDecoder

try:
    _VERSION = version("openmcp-chain")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    _VERSION = "0"
USER_AGENT = f"omc-sdk/{_VERSION} httpx/{httpx.__version__}"

# Errors that say the request was never sendable; asking again cannot help.
NOT_RETRYABLE = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)

# A stream's non-200 answer is read like any call's error: retried on 429/503, else raised.
STREAM_CALL: routes.Call[None] = routes.Call("GET", "stream", lambda _: None, answers=frozenset())


class Base:
    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float,
        retries: int,
        backoff: float,
        max_backoff: float,
        max_retry_after: float,
        stream_read_timeout: float,
        rng: Callable[[], float] | None,
    ) -> None:
        if retries < 0 or timeout <= 0:
            raise InvalidArgument("retries must be >= 0 and timeout > 0")
        self.settings = ClientSettings.resolve(base_url, api_key)
        self.retry = RetryPolicy(retries=retries, backoff=backoff, max_backoff=max_backoff,
                                 max_retry_after=max_retry_after, rng=rng or random.random)
        self._timeout = httpx.Timeout(timeout)
        # The stream is quiet between events; the gateway sends a comment every 15 s.
        self._stream_timeout = httpx.Timeout(timeout, read=max(stream_read_timeout, timeout))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings.base_url!r})"

    def _headers(self, call_headers: dict[str, str] | None = None, *,
                 authenticated: bool = True) -> dict[str, str]:
        headers = {"Accept": "application/json", **(call_headers or {})}
        if authenticated and self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        return headers

    def _error(self, response: httpx.Response, retry_after: float | None) -> OmcApiError:
        hint = ""
        if response.status_code == 401 and not self.settings.api_key:
            hint = "no API key was given: pass api_key or set OMC_API_KEY (omc keys create)"
        return api_error(response.status_code, response.content,
                         reason=response.reason_phrase, retry_after=retry_after, hint=hint)

    def _answer(self, call: routes.Call, response: httpx.Response, attempt: int):
        """(result, None) for an answer, (None, delay) to retry; raises an error otherwise."""
        if response.status_code in call.answers:
            return call.parse(response), None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        keyed = any(k.lower() == "idempotency-key" for k in call.headers)
        delay = (self.retry.retry_status(attempt, response.status_code, retry_after,
                                         idempotency_key=keyed)
                 if call.retry_statuses else None)
        if delay is None:
            raise self._error(response, retry_after)
        return None, delay

    def _no_answer(self, call: routes.Call, error: httpx.HTTPError, attempt: int) -> float:
        """The delay before resending a call that got no answer; raises when out of tries."""
        delay = None
        if not isinstance(error, NOT_RETRYABLE):
            delay = self.retry.retry_transport(attempt, call.method, dict(call.headers))
        if delay is None:
            raise self._transport_error(call.describe(), error, attempt + 1) from error
        return delay

    def _transport_error(self, what: str, error: Exception, attempts: int) -> TransportError:
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        hint = ""
        if isinstance(error, httpx.ConnectError):
            hint = f"; is the gateway running at {self.settings.base_url} (OMC_API_URL)?"
        reason = str(error) or type(error).__name__
        return TransportError(f"{what} to {self.settings.base_url} got no answer{tries}: "
                              f"{reason}{hint}")


def next_events_page(page: Page[TaskEvent], page_size: int, after: int | None,
                     cursor: str | None) -> tuple[int | None, str | None] | None:
    """Where the next page of a task's trail starts, or None after the last: the gateway's
    cursor when it gives one, else after the last sequence when the page was full."""
    if page.next_cursor:
        if page.next_cursor == cursor:
            raise ProtocolError(f"the gateway gave cursor {cursor!r} twice")
        return after, page.next_cursor
    if len(page.items) >= page_size and page.items[-1].sequence > (after or 0):
        return page.items[-1].sequence, None
    return None


class Follow:
    """The state of following one task's stream across connections.

    `appear_within`: for about that many seconds (`APPEAR_POLL` apart), a 404 before any
    event means "not projected yet" (a task whose command was just accepted) rather than "no
    such task", and the stream is asked again; the 404 is raised after.
    """

    APPEAR_POLL = 0.2

    def __init__(self, task_id: str, from_beginning: bool, last_event_id: str | int | None,
                 appear_within: float = 0.0):
        self.appear_tries = int(appear_within / self.APPEAR_POLL)
        self.task_id = task_id
        self.from_beginning = from_beginning
        self.last_id = None if last_event_id is None else str(last_event_id)
        self.last_seq = int(self.last_id) if self.last_id and self.last_id.isdigit() else None
        self.failures = 0
        self.server_retry: float | None = None
        self.decoder = SSEDecoder()
        self.events_on_connection = 0

    def request(self) -> tuple[str, dict[str, str], dict[str, str]]:
        self.decoder = SSEDecoder()
        self.events_on_connection = 0
        return routes.stream_request(self.task_id, from_beginning=self.from_beginning,
                                     last_event_id=self.last_id)

    def not_yet(self, status: int) -> bool:
        """Whether an answer `status` means the task is not projected yet (ask again)."""
        if status != 404 or self.appear_tries <= 0 or self.last_seq is not None:
            return False
        self.appear_tries -= 1
        return True

    @staticmethod
    def check_stream(response: httpx.Response) -> None:
        kind = response.headers.get("Content-Type", "")
        if not kind.startswith("text/event-stream"):
            raise ProtocolError(f"{response.request.url.path} answered {kind or 'no type'}, "
                                "not text/event-stream")

    def line(self, line: str) -> TaskEvent | None:
        """The event a line completes, or None; events already seen (on resume) are skipped."""
        sse = self.decoder.feed(line)
        if self.decoder.retry is not None:
            self.server_retry = self.decoder.retry / 1000
        if sse is None:
            return None
        event = routes.stream_event(sse.data)
        if self.last_seq is not None and event.sequence <= self.last_seq:
            return None
        self.last_seq = event.sequence
        self.last_id = sse.id if sse.id is not None else str(event.sequence)
        self.failures = 0
        self.events_on_connection += 1
        return event

    def broken(self, retry: RetryPolicy, cause: str, base_url: str) -> float:
        """The delay before reconnecting; raises `TransportError` after too many in a row."""
        delay = retry.retry_transport(self.failures, "GET", {})
        if delay is None:
            raise TransportError(
                f"the event stream of task {self.task_id} at {base_url} broke "
                f"{self.failures + 1} times in a row: {cause}")
        self.failures += 1
        return max(delay, self.server_retry or 0.0)
