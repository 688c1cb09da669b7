"""Writing the runtime's records: the envelope filled in, the chain sealed, Kafka's ack awaited.

    append(...)   events of one aggregate (a task, an agent), chained after its head
    request(...)  a self-hashed request (TxRequested, ReserveBudget, ReleaseBudget)

Ids are derived from the causing message and the position among what it caused, so
reprocessing after a crash writes the same ids. `append` returns only once Kafka has
acknowledged every record (acks=all, idempotent producer); only then may the caller act on
them or commit its input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from omc_domain.draft import is_draft
from omc_events.chain import seal, seal_command
from omc_events.envelope import ChainHead, derived_id
from omc_events.record import Record
from omc_events.records import EventMeta
from omc_kafka.acked import AsyncProducer

ACTOR = "svc:agent-runtime"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Cause:
    """Where new records come from: the message that caused them and its context."""

    event_id: str
    tenant: str
    correlation_id: str
    traceparent: str | None = None
    actor: str = ACTOR


class Writer:
    """Seals and produces records; concurrent writes share the producer's batches."""

    def __init__(self, producer: AsyncProducer, clock: Callable[[], datetime] = _now,
                 *, remember: int = 100_000) -> None:
        self.producer = producer
        self.clock = clock
        self._written: dict[str, None] = {}  # insertion-ordered: the oldest goes first
        self._remember = remember

    def wrote(self, event_id: str) -> bool:
        """True for the ids of (recent) records this writer wrote; they need no decoding
        when read back, since their writer folded them into its views already."""
        return event_id in self._written

    def _keep(self, records: Sequence[Record]) -> None:
        for record in records:
            self._written[record.meta.event_id] = None  # type: ignore[attr-defined]
        while len(self._written) > self._remember:
            del self._written[next(iter(self._written))]

    def _meta(self, record: Record, cause: Cause, position: int, aggregate_type: str,
              aggregate_id: str) -> EventMeta:
        return EventMeta(
            event_id=derived_id(cause.event_id, position), event_type=record.SCHEMA,
            schema_version=1, aggregate_type=aggregate_type, aggregate_id=aggregate_id,
            sequence=0, occurred_at=self.clock(), tenant=cause.tenant, actor=cause.actor,
            correlation_id=cause.correlation_id, causation_id=cause.event_id,
            traceparent=cause.traceparent, prev_hash="", hash="")

    async def append(self, topic: str, records: Sequence[Record], head: ChainHead, cause: Cause,
                     aggregate_type: str, aggregate_id: str) -> list[Record]:
        """`records` (meta=DRAFT) sealed after `head` and acknowledged by Kafka."""
        sealed = []
        schemas = self.producer.codec.schemas
        for position, record in enumerate(records):
            assert is_draft(record), f"{record.SCHEMA} already has an envelope"
            filled = dataclasses.replace(record, meta=self._meta(
                record, cause, position, aggregate_type, aggregate_id))
            record, head = seal(schemas, filled, head)
            sealed.append(record)
        await self.producer.send(topic, sealed, aggregate_id)
        self._keep(sealed)
        return sealed

    async def request(self, topic: str, record: Record, cause: Cause, position: int,
                      aggregate_type: str, aggregate_id: str, key: str) -> Record:
        """A self-hashed request (sequence 0), acknowledged by Kafka."""
        filled = dataclasses.replace(record, meta=self._meta(
            record, cause, position, aggregate_type, aggregate_id))
        sealed = seal_command(self.producer.codec.schemas, filled)
        await self.producer.send(topic, [sealed], key)
        self._keep([sealed])
        return sealed
