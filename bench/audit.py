"""Audit verification throughput, and the gas one anchor costs per event it covers.

    .venv/bin/python -m bench.audit [--events 20000] [--partitions 4] [--rounds 3]
                                    [--every 1000] [--workers N] [--no-chain]

In memory, `--partitions` streams (topic-partitions) of real-format events (the task mix:
submission, inference requested and completed with its signature, action, policy,
completion; sealed and chained), signed checkpoints every `--every` events of a stream
written by the notary's own core; then `omc_proofs.audit.audit` (every hash and chain link,
sequences, the inference signatures, the checkpoint signatures, the Merkle root of every
checkpoint recomputed, consistency between checkpoints) against the baseline of bare
SHA-256 over the same message bytes, in the same run, on ONE core. The audit is measured in
one process (workers=1: the like-for-like figure) and spread over `--workers` processes
(default: every core; the streams are checked in parallel, stitched in order): that figure
is several cores against the single-threaded baseline, and is labelled so. With the
chain (anvil of the local stack): the gas of one AnchorRegistry.anchor call, divided by
the events a checkpoint covers.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import platform
import time
import uuid
from datetime import UTC, datetime

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from omc_events.avro import Schemas
from omc_events.catalogue import Catalogue
from omc_events.chain import seal
from omc_events.codec import Codec
from omc_events.envelope import ChainHead
from omc_events.records import InferenceCompleted
from omc_llm.attest import Attestor, inference_digest
from omc_notary.notary import Notary
from omc_proofs.audit import Evidence, Stored, audit
from omc_proofs.checkpoint import NotaryKey
from tests.support.samples import sample

TOPIC = "omc.task.events.v1"
MIX = ("omc.task.TaskSubmitted", "omc.task.InferenceRequested", "omc.task.InferenceCompleted",
       "omc.task.ActionProposed", "omc.task.PolicyEvaluated", "omc.task.TaskCompleted")
T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


def build(events: int, every: int, partitions: int = 1) -> tuple[Codec, Evidence, NotaryKey]:
    schemas = Schemas()
    registry = SchemaRegistryClient.new_client({"url": "mock://bench-audit"})
    catalogue = Catalogue.load()
    for subject, name in catalogue.subjects():
        registry.register_schema(subject, Schema(schemas.set.standalone_json(name), "AVRO"))
    codec = Codec(registry, schemas=schemas, catalogue=catalogue)
    attestor, key = Attestor("0x" + "11" * 32), NotaryKey("0x" + "22" * 32)
    notary = Notary(key, schemas, proof_topic="omc.proof.events.v1", tx_topic="-",
                    every_events=every, every_seconds=10**9)
    stored, proof = [], []
    offset = 0
    offsets = [0] * partitions
    while offset < events:
        task_id = str(uuid.UUID(int=offset + 1))
        partition = (offset // len(MIX)) % partitions
        head = ChainHead()
        for i, name in enumerate(MIX):
            record = sample(schemas.set, name, aggregate_id=task_id, causation=task_id,
                            position=i)
            record = dataclasses.replace(record, task_id=task_id)
            if isinstance(record, InferenceCompleted):
                digest = inference_digest(record.inference_id, record.model,
                                          record.parameters_json, record.prompt_hash,
                                          record.response, record.tool_calls)
                record = dataclasses.replace(record, digest=digest, signer=attestor.address,
                                             signature=attestor.sign(digest))
            record, head = seal(schemas, record, head)
            value = codec.encode(TOPIC, record)
            at = offsets[partition]
            offsets[partition] += 1
            stored.append(Stored(TOPIC, partition, at, task_id.encode(), value))
            for out in (notary.observe(TOPIC, partition, at, value, record, T0)
                        + notary.due(T0)):
                proof.append(Stored(out.topic, 0, len(proof), out.key.encode(),
                                    codec.encode(out.topic, out.record)))
            offset += 1
    stored.sort(key=lambda m: (m.partition, m.offset))  # as the log is read
    evidence = Evidence(events=stored, proof_events=proof,
                        complete={f"{TOPIC}:{p}" for p in range(partitions)})
    return codec, evidence, key


def _best(work, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def anchor_gas(every: int) -> tuple[int, float] | None:
    try:
        from eth_account import Account
        from web3 import Web3

        from omc_chain.artifacts import load_artifact
        from omc_chain.deploy import deploy_contract, send_call
        from omc_config import Settings

        web3 = Web3(Web3.HTTPProvider(Settings.from_env().chain_rpc_url,
                                      request_kwargs={"timeout": 5}))
        account = Account.create()
        web3.provider.make_request("anvil_setBalance", [account.address, hex(10**19)])
        registry = deploy_contract(web3, account, load_artifact("AnchorRegistry"))
        from omc_chain import abi

        data = abi.encode_call("anchor(bytes32,uint64,bytes32)",
                               ["0x" + os.urandom(32).hex(), every, "0x" + os.urandom(32).hex()])
        gas = int(send_call(web3, account, registry, data)["gasUsed"])
        return gas, gas / every
    except Exception as error:  # the chain is optional for this benchmark
        print(f"(no chain figure: {type(error).__name__}: {error})")
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-chain", action="store_true")
    args = parser.parse_args()
    codec, evidence, key = build(args.events, args.every, args.partitions)
    n = len(evidence.events)
    values = [m.value for m in evidence.events]
    from omc_events.codec import schema_id_of

    def kind(value: bytes) -> str:
        return codec.writer(schema_id_of(value)).name

    report = audit(evidence, codec.decode, (key.address,), kind=kind)
    assert report.ok, report.findings[:3]

    def bare() -> None:
        for value in values:
            hashlib.sha256(value).digest()

    def fields(value: bytes) -> dict:  # as omc_audit.verify reads inferences
        writer = codec.writer(schema_id_of(value))
        return codec.schemas.decode(writer.name, value, writer.parsed, offset=5)

    def verify(workers: int = 1) -> None:
        audit(evidence, codec.decode, (key.address,), kind=kind, workers=workers,
              fields=fields)

    def structure(workers: int = 1) -> None:  # hashes, chains, trees, checkpoints only
        audit(evidence, codec.decode, (key.address,), kind=lambda value: "", workers=workers)

    parallel = audit(evidence, codec.decode, (key.address,), kind=kind, workers=args.workers,
                     fields=fields)
    assert parallel.ok
    assert parallel.inferences == report.inferences
    base = _best(bare, args.rounds)
    took = _best(verify, args.rounds)
    bare_structure = _best(structure, args.rounds)
    took_n = _best(lambda: verify(args.workers), args.rounds)
    structure_n = _best(lambda: structure(args.workers), args.rounds)
    size = sum(map(len, values)) / n
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{n} events (mean {size:.0f} bytes) in {args.partitions} streams, "
          f"{report.checkpoints} checkpoints, {report.inferences} inference signatures")
    print(f"bare SHA-256 over the same bytes, one core: {n / base:,.0f} events/s")
    print(f"audit, one process:        {n / took:,.0f} events/s "
          f"({100 * base / took:.1f}% of bare SHA-256)")
    print(f"  without the inference signatures: {n / bare_structure:,.0f} events/s "
          f"({100 * base / bare_structure:.1f}%)")
    print(f"audit, {args.workers} processes (vs the one-core baseline): {n / took_n:,.0f} "
          f"events/s ({100 * base / took_n:.1f}%)")
    print(f"  without the inference signatures: {n / structure_n:,.0f} events/s "
          f"({100 * base / structure_n:.1f}%)")
    if not args.no_chain:
        found = anchor_gas(args.every)
        if found:
            print(f"anchor(): {found[0]} gas per checkpoint = {found[1]:.1f} gas per event "
                  f"at {args.every} events per checkpoint")


if __name__ == "__main__":
    main()
