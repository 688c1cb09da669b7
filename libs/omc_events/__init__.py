"""The event contract: envelope, records, codec, topic catalogue."""
