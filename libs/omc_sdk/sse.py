"""Server-Sent Events, decoded line by line as the WHATWG HTML standard says. Pure.

Feed it the lines of a `text/event-stream` (without their line ends); it answers a
`ServerSentEvent` on each blank line that ends an event with data, else None. Comment lines
(`:` first, the gateway's keep-alives) and unknown fields are ignored; the last event id
carries over from one event to the next, as in a browser, and `retry` (the reconnection
time the server asks for, in ms) holds from the line that sets it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None


class SSEDecoder:
    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None
        self.retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        return self._last_id

    def feed(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerSentEvent(event=event or "message", data="\n".join(data), id=self._last_id)
