"""The base of every generated record class (see `codegen` and `records`)."""

from __future__ import annotations

from typing import Any, ClassVar


class Record:
    """A value of one Avro named record type; `SCHEMA` is its full Avro name.

    Subclasses are frozen dataclasses generated from schemas/avro. Commands and events have
    `meta` (an `EventMeta`) as their first field; helper records (a Policy, a RuleResult)
    have none.
    """

    __slots__ = ()
    SCHEMA: ClassVar[str]

    def to_avro(self) -> dict[str, Any]:
        """The value as the plain dicts and lists fastavro writes."""
        raise NotImplementedError

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> Record:
        """Build the value from what fastavro read."""
        raise NotImplementedError
