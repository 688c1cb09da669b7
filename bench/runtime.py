"""Agent runtime throughput: task events/s written by the running runtime (faust on the hot
path, the offline planner, the policy engine, signed inference, chain reads on anvil), against
a raw confluent-kafka consume→produce copy of the same event bytes, in the same run.

    .venv/bin/python -m bench.runtime [--tasks 300] [--kind read|text]

Needs the system up (`omc up`). A fresh agent is registered; N SubmitTask commands are
written straight to omc.commands.v1 (as the gateway writes them); the clock runs from the
first command to the last task's terminal event on omc.task.events.v1. `read` tasks ask for a
balance (9 events each: two inferences, a policy verdict, a chain read); `text` tasks get a
plain answer (4 events each). The baseline then copies exactly the events the runtime wrote
(their wire bytes, keys and headers) from the task topic to a fresh topic with the project's
producer settings (acks=all, idempotence), consume(500) batches, one flush at the end.
Target: the runtime at least 50% of the baseline in events/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import uuid
from datetime import UTC, datetime

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from omc_config import Settings
from omc_events.chain import seal_command
from omc_events.codec import Codec
from omc_events.envelope import ZERO_HASH
from omc_events.records import EventMeta, Policy, RegisterAgent, SubmitTask
from omc_kafka.producer import EventProducer, producer_config

COMMANDS, TASKS = "omc.commands.v1", "omc.task.events.v1"
TERMINAL = (b"omc.task.TaskCompleted", b"omc.task.TaskFailed", b"omc.command.CommandRejected")
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def command(cls, aggregate_type: str, aggregate_id: str, codec: Codec, **fields):
    event_id = str(uuid.uuid4())
    meta = EventMeta(event_id=event_id, event_type=cls.SCHEMA, schema_version=1,
                     aggregate_type=aggregate_type, aggregate_id=aggregate_id, sequence=0,
                     occurred_at=datetime.now(UTC), tenant="bench", actor="key:bench",
                     correlation_id=event_id, causation_id=None, prev_hash=ZERO_HASH, hash="")
    return seal_command(codec.schemas, cls(meta=meta, **fields))


def tail(settings: Settings, topic: str) -> Consumer:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": f"omc.bench.{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
    return consumer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--kind", choices=("read", "text"), default="read")
    args = parser.parse_args()
    settings = Settings.from_env()
    codec = Codec(SchemaRegistryClient({"url": settings.schema_registry_url}))
    producer = EventProducer(Producer(producer_config(settings)), codec, "omc/bench")

    agent_id = str(uuid.uuid4())
    policy = Policy(version=1, allowed_chain_ids=(settings.chain_id,), allowed_contracts=(),
                    allowed_selectors=(), allowed_recipients=(RECIPIENT,), deny_addresses=(),
                    max_value_wei="0", budget_wei="0", budget_window_seconds=60,
                    max_fee_per_gas_wei="1", approval_threshold_wei="0",
                    max_inferences_per_task=4)
    producer.send(COMMANDS, command(
        RegisterAgent, "agent", agent_id, codec, agent_id=agent_id, name="bench",
        description="bench.runtime", signer_address=RECIPIENT, model="omc-local-planner",
        parameters_json="{}", policy=policy))
    producer.flush()
    instruction = (f"what is the balance of {RECIPIENT}" if args.kind == "read"
                   else "tell me a joke")
    task_ids = {str(uuid.uuid4()) for _ in range(args.tasks)}
    events = tail(settings, TASKS)
    time.sleep(2)  # the agent is registered before the first task arrives

    started = time.perf_counter()
    for task_id in task_ids:
        producer.send(COMMANDS, command(SubmitTask, "task", task_id, codec, task_id=task_id,
                                        agent_id=agent_id, instruction=instruction,
                                        chain_id=settings.chain_id))
    producer.flush()
    ended: set[str] = set()
    written: list = []
    deadline = time.monotonic() + 600
    while ended != task_ids:
        assert time.monotonic() < deadline, f"{len(ended)} of {len(task_ids)} tasks ended"
        for message in events.consume(500, 0.5):
            if message.error() is not None:
                continue
            key = message.key().decode()
            if key not in task_ids:
                continue
            written.append(message)
            kind = dict(message.headers() or []).get("ce_type", b"")
            if kind in TERMINAL:
                ended.add(key)
    runtime_seconds = time.perf_counter() - started
    events.close()

    copy = f"omc.bench.copy.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(copy, 6, 1)])[copy].result(30)
    source = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                       "group.id": f"omc.bench.{uuid.uuid4().hex}", "enable.auto.commit": False})
    positions = {}
    for message in written:
        tp = (message.partition(), message.offset())
        positions[tp[0]] = min(positions.get(tp[0], tp[1]), tp[1])
    wanted = {(m.partition(), m.offset()) for m in written}
    raw = Producer(producer_config(settings))
    started = time.perf_counter()
    source.assign([TopicPartition(TASKS, p, o) for p, o in positions.items()])
    copied = 0
    while copied < len(wanted):
        for message in source.consume(500, 0.5):
            if message.error() is None and (message.partition(), message.offset()) in wanted:
                raw.produce(copy, value=message.value(), key=message.key(),
                            headers=message.headers())
                raw.poll(0)
                copied += 1
    raw.flush()
    baseline_seconds = time.perf_counter() - started
    source.close()
    admin.delete_topics([copy])

    runtime_rate = len(written) / runtime_seconds
    baseline_rate = copied / baseline_seconds
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, "
          f"load {os.getloadavg()[0]:.1f}; {args.tasks} {args.kind} tasks")
    print(f"runtime : {len(written)} events in {runtime_seconds:.2f} s = "
          f"{runtime_rate:,.0f} events/s ({args.tasks / runtime_seconds:,.1f} tasks/s)")
    print(f"baseline: {copied} events copied in {baseline_seconds:.2f} s = "
          f"{baseline_rate:,.0f} events/s (raw consume -> produce, acks=all)")
    print(f"ratio   : {runtime_rate / baseline_rate:.1%} (target >= 50%)")


if __name__ == "__main__":
    main()
