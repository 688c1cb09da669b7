"""The local Redis is real: round trips, expiry, pipelines."""

from __future__ import annotations


def test_round_trip_with_expiry(redis_keys) -> None:
    client, prefix = redis_keys

    client.set(f"{prefix}status", "running", ex=60)

    assert client.get(f"{prefix}status") == b"running"
    assert 0 < client.ttl(f"{prefix}status") <= 60


def test_pipeline_applies_every_command_in_order(redis_keys) -> None:
    client, prefix = redis_keys
    stream = f"{prefix}latest"

    with client.pipeline(transaction=True) as pipe:
        for i in range(5):
            pipe.rpush(stream, f"event-{i}")
        pipe.ltrim(stream, -3, -1)
        pipe.lrange(stream, 0, -1)
        *_, latest = pipe.execute()

    assert latest == [b"event-2", b"event-3", b"event-4"]
