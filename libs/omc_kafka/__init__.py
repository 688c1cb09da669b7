"""Kafka adapters: producer and consumer of contract records, dead letters, topic catalogue."""
