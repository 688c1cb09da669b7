"""The audit: everything `omc audit verify` checks, over evidence already in memory.

    audit(evidence, decode, trusted=(), chain=None, registry=None, kind=None, workers=1,
          fields=None) -> Report

Evidence is what the log (or a bundle) holds: event messages as stored (topic, partition,
offset, key, value), the proof topic's messages, inclusion proofs for events whose stream is
not complete, and recorded anchor receipts. The checks:

    per stream   offsets strictly increasing; every hash, sequence and prev_hash
                 (omc_events.chain.verify); inference signatures (omc_llm.attest)
    proof log    its own hash chain; every checkpoint's digest and signature (by a trusted
                 notary when `trusted` is given); consecutive checkpoints of a stream follow
                 each other (sizes, roots) and their consistency proofs verify
    complete     the tree recomputed from the leaves has each checkpoint's root, and each
    streams      checkpoint's offsets; no checkpoint covers more than the stream holds
    partial      every event has an inclusion proof against a checkpoint it verifies against,
    streams      within that checkpoint's signed offset range; every proof has its event
    ranges       (a range bundle) the events of each declared range are exactly the leaves
                 first_leaf..last_leaf of its stream, in offset order, and no event lies
                 outside a declared range; chain links are checked between an aggregate's
                 events inside the bundle (its first one there starts the run)
    anchors      each AnchorConfirmed names a signed checkpoint's root, and the chain's
                 AnchorRegistry.rootOf(stream, size) holds that root (or, offline, the
                 recorded receipt says so, and the report says it was not checked live).
                 A checkpoint need not be anchored (the notary does not anchor one that
                 covers only its own anchoring traffic): it is signed and chained by
                 consistency proofs to the stream's others, and an anchored later one
                 extends it. `Report.anchored` gives, per stream, the newest size whose
                 anchor verified: what lies beyond is covered by signature only.

The per-message work runs on the raw bytes (omc_proofs.fastcheck), per run of one
partition's messages, optionally in forked worker processes (`workers`), stitched in order:
the findings are those of one pass over the messages, in their order.

Each problem is a `Finding` with a stable `code` (see CODES) and the place it was found.
Pure: the chain is asked through `chain`, a callable given by the caller.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from omc_events.record import Record
from omc_events.records import (
    AnchorConfirmed,
    AnchorSubmitted,
    CheckpointSigned,
    InferenceCompleted,
)
from omc_llm.attest import inference_digest
from omc_proofs.checkpoint import (
    checkpoint_problems,
    hex32,
    signed_by,
    stream_id,
    unhex32,
)
from omc_proofs.fastcheck import Segment, check_segment, stitch
from omc_proofs.merkle import MerkleTree, verify_consistency, verify_inclusion

CODES = {
    "unreadable": "the message is not a readable event of the contract",
    "order": "offsets are not in increasing order",
    "hash": "the event's hash does not match its bytes",
    "sequence": "the aggregate's sequence has a gap or is out of order",
    "prev_hash": "prev_hash is not the previous event's hash",
    "inference_signature": "the inference's digest or signature does not verify",
    "checkpoint_signature": "the checkpoint's digest or signature does not verify",
    "checkpoint_untrusted": "the checkpoint is signed by a key that is not a trusted notary",
    "checkpoint_gap": "a checkpoint does not follow the stream's previous one",
    "consistency": "a consistency proof between checkpoints does not verify",
    "checkpoint_root": "the events' Merkle root is not the signed root",
    "checkpoint_range": "the signed offset range does not match the events",
    "truncated": "the stream holds fewer events than a checkpoint covers",
    "inclusion": "an inclusion proof does not verify against its checkpoint",
    "missing_proof": "an event has no inclusion proof",
    "missing_event": "an inclusion proof names an event that is not there",
    "anchor_mismatch": "an anchor names a root no signed checkpoint has",
    "not_anchored": "the chain does not hold the anchored root",
    "incomplete": "a task bundle's last event (refusals aside) is not the task's terminal one",
    "range": "a range bundle does not hold exactly the events of its declared range",
}
TERMINAL = ("omc.task.TaskCompleted", "omc.task.TaskFailed", "omc.task.TaskCancelled")


@dataclass(frozen=True)
class Stored:
    """A message as the log stores it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes

    @property
    def where(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"

    @property
    def stream(self) -> str:
        return stream_id(self.topic, self.partition)


@dataclass(frozen=True)
class InclusionProof:
    topic: str
    partition: int
    offset: int
    leaf_index: int
    tree_size: int
    path: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


@dataclass(frozen=True)
class AnchorReceipt:
    """A recorded copy of what the chain said about an anchor when it was exported."""

    stream_id: str
    tree_size: int
    root: str
    chain_id: int
    registry: str
    tx_hash: str
    block_number: int
    block_hash: str
    root_on_chain: str | None


@dataclass(frozen=True)
class RangeClaim:
    """What a range bundle says it holds: every message of `stream_id` from `first_offset`
    to `last_offset`, which are the leaves `first_leaf`..`last_leaf` of its tree."""

    stream_id: str
    first_offset: int
    last_offset: int
    first_leaf: int
    last_leaf: int


@dataclass
class Evidence:
    events: list[Stored] = field(default_factory=list)
    complete: set[str] = field(default_factory=set)  # stream ids held whole from offset 0
    unproven: set[str] = field(default_factory=set)  # streams no notary covers (commands):
    #                                                  their hashes and chains only
    proof_events: list[Stored] = field(default_factory=list)
    proofs: list[InclusionProof] = field(default_factory=list)
    receipts: list[AnchorReceipt] = field(default_factory=list)
    task_id: str | None = None  # a task's bundle: its events must end with a terminal one
    focus: set[tuple[str, int, int]] | None = None  # (topic, partition, offset) whose
    #                                  records are checked beyond their envelope
    #                                  (inferences); None: every message
    chained: set[str] | None = None  # aggregates held whole ("<type>/<id>"): sequences and
    #                                  prev_hash checked; None: every aggregate. Others (a
    #                                  task's transactions in a bundle) are a subset of
    #                                  their aggregate: own hashes and inclusion only
    ranges: list[RangeClaim] = field(default_factory=list)  # a range bundle's claims
    runs: bool = False  # aggregates are held from some event on (a range): the first one
    #                     held starts the chain, each next one must follow it


@dataclass(frozen=True)
class Finding:
    code: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail} [{self.code}]"


@dataclass
class Report:
    events: int = 0
    proof_events: int = 0
    checkpoints: int = 0
    inferences: int = 0
    proofs: int = 0
    anchors_on_chain: int = 0
    anchors_recorded: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)  # event where -> proof status, for
    #                                                     events proven one by one (bundles)
    coverage: dict[str, tuple[int, int]] = field(default_factory=dict)  # complete stream ->
    #                                        (events its checkpoints cover, events it holds)
    anchored: dict[str, int] = field(default_factory=dict)  # stream -> the newest tree size
    #                                    whose anchor verified (beyond it: signatures only)

    @property
    def ok(self) -> bool:
        return not self.findings

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def add(self, code: str, where: str, detail: str) -> None:
        self.findings.append(Finding(code, where, detail))


# (registry, stream id, tree size) -> the root the chain holds ("0x00…" when none), or None
# when the chain cannot be asked.
ChainRoots = Callable[[str, str, int], str | None]
ZERO32 = "0x" + "00" * 32


def _key(m: Stored) -> tuple[str, int, int]:
    return (m.topic, m.partition, m.offset)


PARALLEL_FROM = 20_000  # messages: below this, a pool costs more than it saves


_PLACE = attrgetter("topic", "partition")


def _segments(messages: list[Stored]) -> list[tuple[int, int]]:
    """[start, end) of each maximal run of messages of one topic-partition."""
    places = list(map(_PLACE, messages))
    bounds, start = [], 0
    for i in range(1, len(places)):
        if places[i] != places[i - 1]:
            bounds.append((start, i))
            start = i
    if places:
        bounds.append((start, len(places)))
    return bounds


# What forked workers inherit instead of receiving it: the decode function and the messages
# ("events", "proof"), which then never cross a pipe. One audit at a time per process.
_SHARED: dict[str, Any] = {}
_ONE_AT_A_TIME = threading.Lock()


def _pool(workers: int, decode: Callable[[bytes], Record]) -> Any:
    """A pool of `workers` forked processes that know `decode`, or None (one process: no
    fork on this platform, or one worker asked for)."""
    if workers <= 1:
        return None
    import multiprocessing

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        return None
    _SHARED["decode"] = decode
    import gc

    gc.freeze()  # the children's collector then leaves the inherited heap alone: without
    try:         # it, their first full collection copies every page (copy-on-write)
        return context.Pool(workers)
    finally:
        gc.unfreeze()


def _run(jobs: list[tuple], fn: Callable, pool: Any) -> list:
    """fn(*job) for every job, in the pool when there is one. Results in the jobs' order."""
    if pool is None or len(jobs) <= 1:
        return [fn(*job) for job in jobs]
    return pool.starmap(fn, jobs, chunksize=1)


def _check_inferences(indices: list[int]) -> list[tuple[int, str, str]]:
    """Findings (index, code, text) of the InferenceCompleted events at these indices,
    decoded with the inherited decode function: `audit`'s inference loop, in a worker."""
    decode, events, fields = _SHARED["decode"], _SHARED["events"], _SHARED.get("fields")
    found = []
    for index in indices:
        try:
            if fields is not None:  # the datum is all the check needs: no typed record
                datum = fields(events[index].value)
                found.append((index, "", ""))  # counted
                if not _inference_fields_ok(datum):
                    found.append((index, "inference_signature",
                                  f"inference {datum['inference_id']}: digest or signature "
                                  f"by {datum['signer']} does not verify"))
                continue
            record = decode(events[index].value)
        except Exception as error:  # any failure to decode is a finding, never a crash
            found.append((index, "unreadable", f"does not decode: {error}"))
            continue
        if isinstance(record, InferenceCompleted):
            found.append((index, "", ""))  # counted
            if not _inference_ok(record):
                found.append((index, "inference_signature",
                              f"inference {record.inference_id}: digest or signature by "
                              f"{record.signer} does not verify"))
    return found


def _segment_job(which: str, start: int, end: int, previous: int,
                 chained: Collection[bytes] | None, runs: bool, tree: bool) -> Segment:
    part = _SHARED[which][start:end]
    return check_segment([m.value for m in part], [m.offset for m in part], previous,
                         chained, runs, tree)


def _check_chains(which: str, report: Report, chained: set[str] | None = None,
                  runs: bool = False, pool: Any = None,
                  bounds: list[tuple[int, int]] | None = None,
                  trees: Collection[int] = ()) -> list[Segment]:
    """docs/envelope.md's three checks for every message, and offsets increasing per
    partition: omc_proofs.fastcheck over each run of one partition's messages (`bounds`;
    in the pool's processes, if any), stitched in order. Returns each run's result: its messages'
    leaves (omc_proofs.leaves' definition), read in the same pass, and for the runs in
    `trees`, their Merkle trees."""
    messages = _SHARED[which]
    bounds = _segments(messages) if bounds is None else bounds
    last: dict[tuple[str, int], int] = {}
    jobs = []
    wanted = None if chained is None else {c.encode() for c in chained}
    for start, end in bounds:
        tp = (messages[start].topic, messages[start].partition)
        previous = last.get(tp, -1)
        last[tp] = max(previous, max(m.offset for m in messages[start:end]))
        jobs.append((which, start, end, previous, wanted, runs, len(jobs) in trees))
    results = _run(jobs, _segment_job, pool)
    heads: dict[bytes, tuple[int, bytes]] = {}
    found: list[tuple[int, str, str]] = []
    for (start, _), result in zip(bounds, results, strict=True):
        found += [(start + i, code, text) for i, code, text in result.findings]
        found += [(start + i, code, text)
                  for i, code, text in stitch(result.deferred, heads, runs)]
        heads.update(result.heads)
    found.sort(key=lambda f: f[0])
    for index, code, text in found:
        report.add(code, messages[index].where, text)
    return results


def _decode_all(messages: Iterable[Stored], decode: Callable[[bytes], Record],
                report: Report, kind: Callable[[bytes], str] | None = None,
                kinds: Collection[str] = ()) -> list[tuple[Stored, Record]]:
    """The messages decoded (only those whose `kind` is in `kinds`, when `kind` is given)."""
    decoded = []
    for m in messages:
        try:
            if kind is not None and kind(m.value) not in kinds:
                continue
            decoded.append((m, decode(m.value)))
        except Exception as error:  # any failure to decode is a finding, never a crash
            report.add("unreadable", m.where, f"does not decode: {error}")
    return decoded


def audit(evidence: Evidence, decode: Callable[[bytes], Record],
          trusted: Collection[str] = (), chain: ChainRoots | None = None,
          registry: str | None = None, kind: Callable[[bytes], str] | None = None,
          workers: int = 1, fields: Callable[[bytes], dict] | None = None) -> Report:
    """Verify `evidence`; `registry` pins the AnchorRegistry (else the one anchors name).
    `kind(value)` names a message's record from its schema id (the first 5 bytes; it is
    asked once per id) so that only the events with something more to check (inferences)
    are decoded; without it every one is. `workers` > 1: the per-message work (hashes,
    chains, trees, inference signatures) is spread over that many forked processes when
    there are at least PARALLEL_FROM events; the answer is the same. `fields(value)`, with
    `kind`: an InferenceCompleted's Avro datum (a dict, no typed record: the check needs
    nothing more, and building the record costs more than reading it)."""
    with _ONE_AT_A_TIME:
        _SHARED.update(events=evidence.events, proof=evidence.proof_events, decode=decode)
        if fields is not None and kind is not None:
            _SHARED["fields"] = fields
        pool = _pool(workers if len(evidence.events) >= PARALLEL_FROM else 1, decode)
        try:
            return _audit(evidence, decode, trusted, chain, registry, kind, pool, workers)
        finally:
            if pool is not None:  # every result is in: stop the workers now
                pool.terminate()
                pool.join()
            _SHARED.clear()


def _by_header(kind: Callable[[bytes], str]) -> Callable[[bytes], str]:
    """`kind`, asked once per schema id."""
    known: dict[bytes, str] = {}

    def cached(value: bytes) -> str:
        header = value[:5]
        found = known.get(header)
        if found is None:
            found = known[header] = kind(value)
        return found

    return cached


def _audit(evidence: Evidence, decode: Callable[[bytes], Record], trusted: Collection[str],
           chain: ChainRoots | None, registry: str | None,
           kind: Callable[[bytes], str] | None, pool: Any, workers: int) -> Report:
    report = Report(events=len(evidence.events), proof_events=len(evidence.proof_events))
    events = evidence.events
    bounds = _segments(events)
    streams = [stream_id(events[start].topic, events[start].partition) for start, _ in bounds]
    whole = {i for i, s in enumerate(streams)  # a complete stream held in one run
             if s in evidence.complete and streams.count(s) == 1}
    results = _check_chains("events", report, evidence.chained, evidence.runs, pool, bounds,
                            whole)
    runs_of: dict[str, list[int]] = defaultdict(list)  # stream -> its runs, in order
    for i, s in enumerate(streams):
        runs_of[s].append(i)
    leaves: dict[tuple[str, int, int], bytes] = {}  # of the events proven one by one
    for i, s in enumerate(streams):
        if s not in evidence.complete and s not in evidence.unproven:
            start, end = bounds[i]
            leaves.update(zip(map(_key, events[start:end]), results[i].leaves, strict=True))
    last_of_task: tuple[Stored, Record] | None = None
    if evidence.task_id is not None:
        kind = None  # a task's bundle: every event is read, for the terminal check
    focused = evidence.events if evidence.focus is None else [
        m for m in evidence.events if _key(m) in evidence.focus]
    if kind is not None:
        kind = _by_header(kind)
    if kind is not None and (pool is not None or "fields" in _SHARED):
        # inferences only, by their fields: checked in the workers, if any
        focused = _inferences_in_pool(events, evidence.focus, kind, pool, workers, report)
    for m, record in _decode_all(focused, decode, report, kind,
                                 (InferenceCompleted.SCHEMA,)):
        meta = record.meta  # type: ignore[attr-defined]
        if (meta.aggregate_type == "task" and meta.aggregate_id == evidence.task_id
                and record.SCHEMA != "omc.command.CommandRejected"):  # refusals may follow
            last_of_task = (m, record)
        if isinstance(record, InferenceCompleted):
            report.inferences += 1
            if not _inference_ok(record):
                report.add("inference_signature", m.where,
                           f"inference {record.inference_id}: digest or signature by "
                           f"{record.signer} does not verify")

    if evidence.task_id is not None and (last_of_task is None
                                         or last_of_task[1].SCHEMA not in TERMINAL):
        where = last_of_task[0].where if last_of_task else f"task {evidence.task_id}"
        report.add("incomplete", where, f"task {evidence.task_id}'s events do not end with "
                   "TaskCompleted, TaskFailed or TaskCancelled: the tail is missing, or the "
                   "task had not ended when it was exported")

    # -- the proof log ---------------------------------------------------------------------
    _check_chains("proof", report)
    checkpoints: dict[str, list[tuple[Stored, CheckpointSigned]]] = defaultdict(list)
    anchors: list[tuple[Stored, AnchorConfirmed]] = []
    submitted: dict[str, AnchorSubmitted] = {}
    for m, record in _decode_all(evidence.proof_events, decode, report):
        if isinstance(record, CheckpointSigned):
            checkpoints[record.stream_id].append((m, record))
        elif isinstance(record, AnchorConfirmed):
            anchors.append((m, record))
        elif isinstance(record, AnchorSubmitted):
            submitted[record.request_id] = record
    signed: dict[tuple[str, int], str] = {}  # (stream, size) -> root of a valid checkpoint
    ranges: dict[str, list[CheckpointSigned]] = {}
    for stream, items in checkpoints.items():
        previous: CheckpointSigned | None = None
        for m, cp in items:
            report.checkpoints += 1
            good = True
            for problem in checkpoint_problems(cp, trusted):
                good = False
                code = ("checkpoint_untrusted" if "trusted" in problem
                        else "checkpoint_signature")
                report.add(code, m.where, f"checkpoint {stream} size {cp.tree_size}: {problem}")
            before = previous.tree_size if previous else 0
            before_root = previous.root if previous else None
            if cp.previous_tree_size != before or cp.previous_root != before_root:
                good = False
                report.add("checkpoint_gap", m.where,
                           f"checkpoint {stream} size {cp.tree_size} says it follows size "
                           f"{cp.previous_tree_size}, but the previous one is size {before}")
            elif before and not _consistent(before, cp):
                good = False
                report.add("consistency", m.where,
                           f"checkpoint {stream}: the tree of size {cp.tree_size} does not "
                           f"extend the tree of size {before}")
            if good:
                signed[(stream, cp.tree_size)] = cp.root
            previous = cp
        ranges[stream] = [cp for _, cp in items]

    # -- complete streams: recompute the trees ---------------------------------------------
    for stream in evidence.complete:
        mine = runs_of.get(stream, [])
        held = [m for i in mine for m in events[bounds[i][0]:bounds[i][1]]]
        if len(mine) == 1 and results[mine[0]].levels is not None:
            tree = MerkleTree.of_levels(results[mine[0]].levels)  # type: ignore[arg-type]
        else:
            tree = MerkleTree.of_leaves([leaf for i in mine for leaf in results[i].leaves])
        offsets = [m.offset for m in held]
        for cp in ranges.get(stream, []):
            where = f"checkpoint {stream} size {cp.tree_size}"
            if cp.tree_size > tree.size:
                report.add("truncated", where, f"the stream holds {tree.size} events; the "
                           f"checkpoint covers {cp.tree_size} (events were removed)")
                continue
            if hex32(tree.root(cp.tree_size)) != cp.root:
                report.add("checkpoint_root", where, "the root of the stream's first "
                           f"{cp.tree_size} events is not the signed root")
            elif (offsets[cp.previous_tree_size] != cp.first_offset
                  or offsets[cp.tree_size - 1] != cp.last_offset):
                report.add("checkpoint_range", where, "the signed offsets "
                           f"{cp.first_offset}..{cp.last_offset} are not the events' offsets")
        covered = max((cp.tree_size for cp in ranges.get(stream, [])), default=0)
        report.coverage[stream] = (min(covered, tree.size), tree.size)
        if covered < tree.size:
            report.notes.append(f"{stream}: {tree.size - covered} newest event(s) not yet "
                                "covered by a checkpoint")

    # -- partial streams: inclusion proofs ---------------------------------------------------
    proofs = {(p.topic, p.partition, p.offset): p for p in evidence.proofs}
    held_keys = set()
    for m in (events[j] for i, s in enumerate(streams)
              if s not in evidence.complete and s not in evidence.unproven
              for j in range(*bounds[i])):
        held_keys.add((m.topic, m.partition, m.offset))
        proof = proofs.get((m.topic, m.partition, m.offset))
        if proof is None:
            report.add("missing_proof", m.where, "no inclusion proof for this event")
            continue
        report.proofs += 1
        root = signed.get((m.stream, proof.tree_size))
        if root is None:
            report.add("inclusion", m.where, f"its proof is against size {proof.tree_size}, "
                       "which no valid signed checkpoint of the stream has")
            continue
        try:
            path = [unhex32(h) for h in proof.path]
        except ValueError:
            path = None
        if path is None or not verify_inclusion(leaves[_key(m)], proof.leaf_index,
                                                proof.tree_size, path, unhex32(root)):
            report.add("inclusion", m.where, f"not included at leaf {proof.leaf_index} of "
                       f"the signed tree of size {proof.tree_size}")
            continue
        adding = next((cp for cp in ranges.get(m.stream, [])
                       if cp.previous_tree_size <= proof.leaf_index < cp.tree_size), None)
        if adding is None or not adding.first_offset <= m.offset <= adding.last_offset:
            report.add("checkpoint_range", m.where, f"leaf {proof.leaf_index} is not at "
                       "this offset in any signed range")
            continue
        report.status[m.where] = f"included in checkpoint size {proof.tree_size}"
    for key, proof in proofs.items():
        if key not in held_keys:
            report.add("missing_event", proof.where, f"an inclusion proof (leaf "
                       f"{proof.leaf_index}) names this event, which is not there")

    _check_ranges(evidence, proofs, report)

    # -- anchors ---------------------------------------------------------------------------
    receipts = {(r.stream_id, r.tree_size): r for r in evidence.receipts}
    live_note = False
    for m, anchor in anchors:
        where = f"{m.where} anchor {anchor.stream_id} size {anchor.tree_size}"
        if signed.get((anchor.stream_id, anchor.tree_size)) != anchor.root:
            report.add("anchor_mismatch", where, f"root {anchor.root} is not the root of a "
                       "valid signed checkpoint of that size")
            continue
        request = submitted.get(anchor.request_id)
        address = registry or (request.anchor_address if request else None)
        on_chain = chain(address, anchor.stream_id, anchor.tree_size) \
            if chain and address else None
        if on_chain is not None:
            report.anchors_on_chain += 1
        else:
            recorded = receipts.get((anchor.stream_id, anchor.tree_size))
            on_chain = recorded.root_on_chain if recorded else None
            if on_chain is None:
                report.add("not_anchored", where, "the chain cannot be asked and no "
                           "receipt was recorded")
                continue
            report.anchors_recorded += 1
            live_note = True
        if on_chain.lower() != anchor.root.lower():
            report.add("not_anchored", where,
                       "the chain holds no such root" if on_chain == ZERO32
                       else f"the chain holds {on_chain}, not {anchor.root}")
            continue
        report.anchored[anchor.stream_id] = max(report.anchored.get(anchor.stream_id, 0),
                                                anchor.tree_size)
    if live_note:
        report.notes.append("the chain was not reachable: anchors were checked against the "
                            "receipts recorded in the bundle, not live")
    return report


def _check_ranges(evidence: Evidence, proofs: dict[tuple[str, int, int], InclusionProof],
                  report: Report) -> None:
    """A range bundle holds every leaf of each declared range, and nothing else."""
    if not evidence.ranges:
        return
    claimed = {c.stream_id: c for c in evidence.ranges}
    by_stream: dict[str, list[Stored]] = defaultdict(list)
    for m in evidence.events:
        claim = claimed.get(m.stream)
        if claim is None or not claim.first_offset <= m.offset <= claim.last_offset:
            report.add("range", m.where, "the event is outside every declared range")
            continue
        by_stream[m.stream].append(m)
    for claim in evidence.ranges:
        held = sorted(by_stream.get(claim.stream_id, []), key=lambda m: m.offset)
        where = (f"range {claim.stream_id} offsets {claim.first_offset}..{claim.last_offset}"
                 f" (leaves {claim.first_leaf}..{claim.last_leaf})")
        indices = [p.leaf_index if (p := proofs.get(_key(m))) else None for m in held]
        if indices != list(range(claim.first_leaf, claim.last_leaf + 1)):
            report.add("range", where, f"holds {len(held)} events, not the "
                       f"{claim.last_leaf - claim.first_leaf + 1} leaves of the range in "
                       "order: events were removed, added or moved")
        elif held and (held[0].offset, held[-1].offset) != (claim.first_offset,
                                                              claim.last_offset):
            report.add("range", where, f"its events run from offset {held[0].offset} to "
                       f"{held[-1].offset}")


def _inferences_in_pool(events: list[Stored], focus: set[tuple[str, int, int]] | None,
                        kind: Callable[[bytes], str], pool: Any, workers: int,
                        report: Report) -> list[Stored]:
    """Check the inferences among the events (those in `focus`, if given) in the pool's
    workers (here, without a pool), in order; returns the events whose kind could not be
    told (left for the caller's loop to report)."""
    wanted, unknown = [], []
    for index, m in enumerate(events):
        if focus is not None and _key(m) not in focus:
            continue
        try:
            if kind(m.value) == InferenceCompleted.SCHEMA:
                wanted.append(index)
        except Exception:  # reported by the caller's loop, as before
            unknown.append(m)
    size = -(-len(wanted) // (workers * 4)) or 1
    chunks = [wanted[i:i + size] for i in range(0, len(wanted), size)]
    results = _run([(chunk,) for chunk in chunks], _check_inferences, pool)
    for found in results:
        for index, code, text in found:
            if not code:
                report.inferences += 1
            else:
                report.add(code, events[index].where, text)
    return unknown


def _inference_fields_ok(d: dict) -> bool:
    """_inference_ok over an InferenceCompleted's Avro datum."""
    digest = inference_digest(d["inference_id"], d["model"], d["parameters_json"],
                              d["prompt_hash"], d["response"], d["tool_calls"])
    return digest == d["digest"] and signed_by(d["digest"], d["signature"], d["signer"])


def _inference_ok(event: InferenceCompleted) -> bool:
    """omc_llm.attest.verify_inference's answer (digest recomputed, signature by signer),
    with the faster signature check."""
    digest = inference_digest(event.inference_id, event.model, event.parameters_json,
                              event.prompt_hash, event.response, event.tool_calls)
    return digest == event.digest and signed_by(event.digest, event.signature, event.signer)


def _consistent(before: int, cp: CheckpointSigned) -> bool:
    try:
        return verify_consistency(before, cp.tree_size, unhex32(cp.previous_root or ""),
                                  unhex32(cp.root), [unhex32(h) for h in cp.consistency_proof])
    except ValueError:
        return False
