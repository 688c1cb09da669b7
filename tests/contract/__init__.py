"""Contract tests: the event schemas, the topic catalogue and their generated documentation."""
