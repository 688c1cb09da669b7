"""The audit's jobs over real sources: verify the log, export a task's bundle, verify one.

    verify_log(settings, topics=Topics(), task_id=None, trusted=(), registry=None,
               workers=1) -> Report
    export_task(settings, task_id, topics=Topics(), registry=None) -> Bundle
    export_range(settings, ranges, topics=Topics(), since=None, until=None,
                 registry=None) -> Bundle
    verify_bundle(bundle, chain=None, trusted=(), registry=None) -> Report

`verify_log` reads the log itself (never a projection): with `task_id`, only the partition
of the task topic that holds the task (found by the key's partition, every partition if it
is not there) and that stream's proof records; otherwise every partition of every topic.
`export_task` collects the task's events as stored, its stream's proof records, the writer
schemas, RFC 9162 inclusion proofs against the newest anchored (else newest) checkpoint
covering each event, and the chain's answer for each anchor (a recorded receipt).
`export_range` does the same for ranges of the log (omc_audit.ranges): every message of
each range, as stored, ending at the newest checkpoint (what is not covered yet cannot be
proven, and is left out), with the range each stream holds (offsets and leaves) declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka.schema_registry import SchemaRegistryClient

from omc_audit.bundle import Bundle, bundle_codec
from omc_audit.onchain import ChainRoots
from omc_audit.ranges import LogRange, RangeInvalid, select
from omc_audit.source import partition_for, partitions, read_partitions
from omc_config import Settings
from omc_errors import OmcError
from omc_events.codec import Codec, schema_id_of
from omc_events.records import AnchorConfirmed, AnchorSubmitted, CheckpointSigned
from omc_proofs.audit import (
    AnchorReceipt,
    Evidence,
    InclusionProof,
    RangeClaim,
    Report,
    Stored,
    audit,
)
from omc_proofs.checkpoint import hex32, stream_id
from omc_proofs.leaves import leaf_data
from omc_proofs.merkle import MerkleTree


class TaskNotFound(OmcError):
    """The log holds no event of this task."""


@dataclass(frozen=True)
class Topics:
    """The topics an audit reads (the catalogue's, or fresh ones in tests)."""

    task: str = "omc.task.events.v1"
    events: tuple[str, ...] = ("omc.task.events.v1", "omc.agent.events.v1",
                               "omc.tx.events.v1", "omc.chain.events.v1")
    commands: tuple[str, ...] = ("omc.commands.v1",)
    proof: str = "omc.proof.events.v1"
    tx: str | None = "omc.tx.events.v1"  # where a task's transactions are (bundles)


def _codec(settings: Settings) -> Codec:
    return Codec(SchemaRegistryClient({"url": settings.schema_registry_url}))


def _fields(codec: Codec):
    """A message's Avro datum (no typed record), read as Codec.decode reads it."""
    def read(value: bytes) -> dict:
        writer = codec.writer(schema_id_of(value))
        return codec.schemas.decode(writer.name, value, writer.parsed, offset=5)

    return read


def _chain(settings: Settings) -> ChainRoots:
    return ChainRoots(settings.chain_rpc_url)


def _task_stream(settings: Settings, topics: Topics, task_id: str) -> tuple[int, list[Stored]]:
    """(partition, its messages) of the task topic partition holding `task_id`."""
    bootstrap = settings.kafka_bootstrap
    count = len(partitions(bootstrap, topics.task))
    hint = partition_for(task_id, count)
    held = read_partitions(bootstrap, [(topics.task, hint)])
    if any(m.key == task_id.encode() for m in held):
        return hint, held
    for p in range(count):
        if p == hint:
            continue
        held = read_partitions(bootstrap, [(topics.task, p)])
        if any(m.key == task_id.encode() for m in held):
            return p, held
    raise TaskNotFound(f"no event of task {task_id} on {topics.task}")


def verify_log(settings: Settings, topics: Topics = Topics(), *, task_id: str | None = None,
               trusted: tuple[str, ...] = (), registry: str | None = None,
               workers: int = 1) -> Report:
    bootstrap = settings.kafka_bootstrap
    proof = read_partitions(bootstrap, [(topics.proof, p)
                                        for p in partitions(bootstrap, topics.proof)])
    if task_id is not None:
        partition, events = _task_stream(settings, topics, task_id)
        stream = stream_id(topics.task, partition)
        evidence = Evidence(events=events, complete={stream},
                            proof_events=[m for m in proof if m.key == stream.encode()],
                            focus={(m.topic, m.partition, m.offset) for m in events
                                   if m.key == task_id.encode()})
    else:
        wanted = [(t, p) for t in (*topics.events, *topics.commands)
                  for p in partitions(bootstrap, t)]
        events = read_partitions(bootstrap, wanted)
        complete = {stream_id(t, p) for t, p in wanted if t in topics.events}
        unproven = {stream_id(t, p) for t, p in wanted if t not in topics.events}
        evidence = Evidence(events=events, complete=complete, unproven=unproven,
                            proof_events=proof)
    codec = _codec(settings)
    return audit(evidence, codec.decode, trusted, _chain(settings), registry,
                 kind=lambda value: codec.writer(schema_id_of(value)).name, workers=workers,
                 fields=_fields(codec))


def _stream_part(codec: Codec, chain: ChainRoots, held: list[Stored],
                 selected: set[int], proof: list[Stored], registry: str | None,
                 ) -> tuple[list[Stored], list[InclusionProof], list[AnchorReceipt], set[str]]:
    """The selected messages of one stream (indices into `held`, the whole partition), their
    inclusion proofs against the newest anchored (else newest) checkpoint covering each, and
    the stream's anchor receipts. Also the checkpoints' signers."""
    tree = MerkleTree(leaf_data(m.value) for m in held)
    checkpoints: list[CheckpointSigned] = []
    confirmed: list[AnchorConfirmed] = []
    registries: dict[str, str] = {}
    for m in proof:
        record = codec.decode(m.value)
        if isinstance(record, CheckpointSigned):
            checkpoints.append(record)
        elif isinstance(record, AnchorConfirmed):
            confirmed.append(record)
        elif isinstance(record, AnchorSubmitted):
            registries[record.request_id] = record.anchor_address
    anchored = {a.tree_size for a in confirmed}
    events, proofs = [], []
    for index in sorted(selected):
        m = held[index]
        events.append(m)
        covering = [c for c in checkpoints if index < c.tree_size <= tree.size
                    and hex32(tree.root(c.tree_size)) == c.root]
        chosen = (max((c for c in covering if c.tree_size in anchored),
                      key=lambda c: c.tree_size, default=None)
                  or max(covering, key=lambda c: c.tree_size, default=None))
        if chosen is not None:
            path = tuple(hex32(h) for h in tree.inclusion_proof(index, chosen.tree_size))
            proofs.append(InclusionProof(m.topic, m.partition, m.offset, index,
                                         chosen.tree_size, path))
    receipts = []
    for a in confirmed:
        address = registry or registries.get(a.request_id)
        if address is None:
            continue
        receipt = chain.receipt(a.tx_hash) or {}
        receipts.append(AnchorReceipt(
            stream_id=a.stream_id, tree_size=a.tree_size, root=a.root, chain_id=a.chain_id,
            registry=address, tx_hash=a.tx_hash,
            block_number=receipt.get("block_number", a.block_number),
            block_hash=receipt.get("block_hash", a.block_hash),
            root_on_chain=chain(address, a.stream_id, a.tree_size)))
    return events, proofs, receipts, {c.signer for c in checkpoints}


def _task_transactions(codec: Codec, bootstrap: str, topic: str,
                       task_id: str) -> dict[int, tuple[list[Stored], set[int]]]:
    """Per tx partition: all its messages, and the indices of the task's transactions'
    events (its TxRequested, and every event naming one of their request ids)."""
    found: dict[int, tuple[list[Stored], set[int]]] = {}
    for p in partitions(bootstrap, topic):
        held = read_partitions(bootstrap, [(topic, p)])
        requests: set[str] = set()
        selected: set[int] = set()
        for index, m in enumerate(held):
            try:
                record = codec.decode(m.value)
            except OmcError:
                continue
            request = getattr(record, "request_id", None)
            if getattr(record, "task_id", None) == task_id and request is not None:
                requests.add(request)
            if request in requests:
                selected.add(index)
        if selected:
            found[p] = (held, selected)
    return found


def export_task(settings: Settings, task_id: str, topics: Topics = Topics(), *,
                registry: str | None = None, now: datetime | None = None) -> Bundle:
    """The task's bundle: its events, and its transactions' events on the tx topic."""
    codec = _codec(settings)
    chain = _chain(settings)
    bootstrap = settings.kafka_bootstrap
    partition, held = _task_stream(settings, topics, task_id)
    parts = {stream_id(topics.task, partition):
             (held, {i for i, m in enumerate(held) if m.key == task_id.encode()})}
    if topics.tx:
        for p, part in _task_transactions(codec, bootstrap, topics.tx, task_id).items():
            parts[stream_id(topics.tx, p)] = part
    proof_log = read_partitions(bootstrap, [(topics.proof, p)
                                            for p in partitions(bootstrap, topics.proof)])
    events, proofs, receipts, proof, signers = [], [], [], [], set()
    for stream, (messages, selected) in parts.items():
        mine = [m for m in proof_log if m.key == stream.encode()]
        e, p, r, s = _stream_part(codec, chain, messages, selected, mine, registry)
        events += e
        proofs += p
        receipts += r
        proof += mine
        signers |= s
    proof.sort(key=lambda m: (m.topic, m.partition, m.offset))
    evidence = Evidence(events=events, proof_events=proof, proofs=proofs, receipts=receipts,
                        task_id=task_id, chained={f"task/{task_id}"})
    return Bundle(task_id=task_id, exported_at=_stamp(now), evidence=evidence,
                  schemas=_schemas(codec, [*events, *proof]), notary=sorted(signers))


def _stamp(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")


def _schemas(codec: Codec, messages: list[Stored]) -> dict[int, dict]:
    """Every writer schema the messages name, by id."""
    schemas = {}
    for m in messages:
        try:
            schema_id = schema_id_of(m.value)
        except OmcError:
            continue
        schemas[schema_id] = codec.writer(schema_id).schema
    return schemas


def export_range(settings: Settings, ranges: list[LogRange], topics: Topics = Topics(), *,
                 since: datetime | None = None, until: datetime | None = None,
                 registry: str | None = None, now: datetime | None = None) -> Bundle:
    """A bundle of ranges of the log (no range: every partition of every event topic),
    narrowed to [since, until) by event time. A range with nothing proven is left out."""
    codec = _codec(settings)
    chain = _chain(settings)
    bootstrap = settings.kafka_bootstrap
    if not ranges:
        ranges = [LogRange(t, p) for t in topics.events for p in partitions(bootstrap, t)]
    streams = [r.stream for r in ranges]
    if len(set(streams)) != len(streams):
        raise RangeInvalid("a stream is named by more than one range; give one range each")
    proof_log = read_partitions(bootstrap, [(topics.proof, p)
                                            for p in partitions(bootstrap, topics.proof)])
    events, proofs, receipts, proof, signers = [], [], [], [], set()
    claims: list[RangeClaim] = []
    for wanted in ranges:
        if wanted.partition not in partitions(bootstrap, wanted.topic):
            raise RangeInvalid(f"{wanted.topic} has no partition {wanted.partition}")
        held = read_partitions(bootstrap, [(wanted.topic, wanted.partition)])
        found = select(wanted, held, since, until)
        if found is None:
            continue
        mine = [m for m in proof_log if m.key == wanted.stream.encode()]
        e, p, r, s = _stream_part(codec, chain, held, set(range(found[0], found[1] + 1)),
                                  mine, registry)
        proven = {(x.topic, x.partition, x.offset) for x in p}
        e = [m for m in e if (m.topic, m.partition, m.offset) in proven]  # a covered prefix
        if not e:
            continue
        first, last = found[0], found[0] + len(e) - 1
        claims.append(RangeClaim(wanted.stream, held[first].offset, held[last].offset,
                                 first, last))
        events += e
        proofs += p
        receipts += r
        proof += mine
        signers |= s
    proof.sort(key=lambda m: (m.topic, m.partition, m.offset))
    evidence = Evidence(events=events, proof_events=proof, proofs=proofs, receipts=receipts,
                        chained=None, ranges=claims, runs=True)
    return Bundle(task_id=None, exported_at=_stamp(now), evidence=evidence,
                  schemas=_schemas(codec, [*events, *proof]), notary=sorted(signers))


def verify_bundle(bundle: Bundle, *, chain: ChainRoots | None = None,
                  trusted: tuple[str, ...] = (), registry: str | None = None) -> Report:
    codec = bundle_codec(bundle)
    live = chain
    if live is not None and not live.reachable:
        live = None
    return audit(bundle.evidence, codec.decode, trusted, live, registry)
