"""The project's schema registry: the Confluent Schema Registry REST API over a Kafka topic.

No registry server can be installed on the project's machines, so this small one serves what
`confluent_kafka.schema_registry` and Kafka tools use: subjects, versions, global schema ids,
compatibility levels and checks (by `omc_events.compat`), AVRO only.

    store.py     the state (subjects, versions, ids, levels) and its persistence: every change
                 is a message on a compacted topic (`_omc_schemas`), written before it is
                 answered; the topic is read to its end at start, so ids survive restarts
    log.py       that topic (Kafka), and an in-memory log with the same interface
    avro.py      parsing, validating and normalising a schema text
    preload.py   registers every record of `schemas/topics.yaml` at start
    app.py       the HTTP routes (Starlette), built by `create_app(settings, store)`
    errors.py    the errors, each with its Confluent error code
    __main__.py  `python -m omc_registry`: the composition root, run under uvicorn

Single instance: ids and versions are assigned in this process's memory and then written, so
two registries writing to one topic would hand out the same id twice. Run exactly one per
topic (the local stack does; in production use any Confluent-compatible registry by URL).
Schemas are never deleted: the log is an audit trail, and DELETE requests are refused.
"""
