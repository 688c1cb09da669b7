"""Codec throughput: our wire codec (typed record -> Confluent wire bytes -> typed record)
against bare fastavro schemaless encode+decode of the same records' dicts, in one run.

    .venv/bin/python -m bench.codec [--seconds 3]

The registry is confluent-kafka's in-memory one: ids are looked up once and cached, so the
figure is the codec's own cost, including its value checks (addresses, hashes, amounts),
framing, and the typed-record conversions. Target: at least 85% of bare fastavro.
"""

from __future__ import annotations

import argparse
import io
import platform
import time

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from omc_events.avro import Schemas
from omc_events.catalogue import Catalogue
from omc_events.chain import seal
from omc_events.codec import Codec
from omc_events.envelope import ChainHead
from omc_events.schemas import SchemaSet
from tests.support.samples import sample

MIX = [("omc.task.events.v1", "omc.task.TaskSubmitted"),
       ("omc.task.events.v1", "omc.task.InferenceCompleted"),
       ("omc.task.events.v1", "omc.task.PolicyEvaluated"),
       ("omc.tx.events.v1", "omc.tx.TxSigned")]


def _rate(work, records: int, seconds: float) -> float:
    rounds, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        work()
        rounds += 1
    return rounds * records / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    schema_set, catalogue = SchemaSet.load(), Catalogue.load()
    schemas = Schemas(schema_set)
    registry = SchemaRegistryClient.new_client({"url": "mock://bench"})
    for topic, name in MIX:
        registry.register_schema(catalogue[topic].subject(name),
                                 Schema(schema_set.standalone_json(name), "AVRO"))
    codec = Codec(registry, schemas=schemas, catalogue=catalogue)
    records = [(topic, seal(schemas, sample(schema_set, name), ChainHead())[0])
               for topic, name in MIX] * 250
    parsed = {name: fastavro.parse_schema(schema_set.standalone(name)) for _, name in MIX}
    plain = [(parsed[record.SCHEMA], record.to_avro()) for _, record in records]

    def bare() -> None:
        for schema, datum in plain:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, schema, datum)
            buffer.seek(0)
            fastavro.schemaless_reader(buffer, schema, None)

    def ours() -> None:
        for topic, record in records:
            codec.decode(codec.encode(topic, record))

    print(f"python {platform.python_version()}, fastavro {fastavro.__version__}, "
          f"{platform.machine()}; best of {args.rounds} alternating rounds of "
          f"{args.seconds:g}s each")
    bare(), ours()  # warm up
    best = {"bare": 0.0, "ours": 0.0}
    for _ in range(args.rounds):
        best["bare"] = max(best["bare"], _rate(bare, len(plain), args.seconds))
        best["ours"] = max(best["ours"], _rate(ours, len(records), args.seconds))
    print(f"{'bare fastavro schemaless (dicts)':<42} {best['bare']:>12,.0f} events/s")
    print(f"{'omc codec (typed records, wire format)':<42} {best['ours']:>12,.0f} events/s")
    print(f"ratio: {best['ours'] / best['bare']:.1%} of bare fastavro (target >= 85%)")


if __name__ == "__main__":
    main()
