"""The Redis keys of this projection, under one prefix (default `omc:v1`, a fresh one per test).

    <prefix>:task:<task_id>:status        hash: tenant, status, agent_id, last_sequence,
                                          last_event_type, last_hash, updated_at,
                                          pending_action_id (only while one waits)
    <prefix>:task:<task_id>:events        stream: the task's latest events, entry id
                                          `<sequence>-0`, fields `type` and `event` (JSON)
    <prefix>:proj:redis:offsets           hash: `<topic>/<partition>` -> next offset to apply
    <prefix>:proj:redis:updated_at        when the offsets last moved (RFC 3339, wall clock)

Only the first three are rebuilt from the log; `updated_at` is the time of the last write.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "omc:v1"
_GLOB_SPECIAL = "\\*?[]"


def glob_escape(text: str) -> str:
    """`text` as a literal inside a Redis MATCH pattern."""
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under `prefix` (no trailing colon)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not self.prefix or self.prefix.endswith(":"):
            raise ValueError(f"key prefix {self.prefix!r} must be non-empty, without a "
                             "trailing ':'")

    def status(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}:status"

    def events(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}:events"

    @property
    def offsets(self) -> str:
        return f"{self.prefix}:proj:redis:offsets"

    @property
    def updated_at(self) -> str:
        return f"{self.prefix}:proj:redis:updated_at"

    @property
    def task_pattern(self) -> str:
        """MATCH pattern of every per-task key of any view (filter with `is_task_key`)."""
        return f"{glob_escape(self.prefix)}:task:*"

    def is_task_key(self, key: str) -> bool:
        """True for this projection's own per-task keys (`…:status`, `…:events`), not for
        another view someone keeps under the same `task:<id>:` naming."""
        head = f"{self.prefix}:task:"
        if not key.startswith(head):
            return False
        task_id, _, view = key[len(head):].rpartition(":")
        return bool(task_id) and ":" not in task_id and view in ("status", "events")
