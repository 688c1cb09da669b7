"""Records to Kafka message values and back, in the Confluent wire format.

    value = 0x00 (magic) || schema id (4 bytes, big-endian) || Avro binary body

Schema ids come from the schema registry (any Confluent-compatible one; the project ships
its own), under TopicRecordNameStrategy subjects `<topic>-<record full name>`, so several
record types share a topic and `kcat -s avro`, Kafka Connect or ksqlDB can read the log.
Encoding never registers schemas: they are registered from `schemas/` (the registry preloads
them), so a record the contract does not allow on a topic is refused here.

Decoding reads the writer schema by id (cached) and resolves it to this build's schema of
the same name, so older events stay readable after a compatible change.

Errors:
    CodecError                              the message or record is at fault:
    ├── RecordInvalid (omc_events.avro)     the record does not match its schema (field named)
    ├── NotOnTopic                          the catalogue does not allow the record on the topic
    ├── UnknownSchema                       the registry has no schema with the message's id
    └── Undecodable                         not the wire format, or bytes that do not decode
    RegistryUnavailable                     the registry is at fault (down, 5xx): retry later;
                                            never a reason to dead-letter a message
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from omc_errors import OmcError
from omc_events.avro import RecordInvalid, Schemas, for_reading
from omc_events.catalogue import Catalogue
from omc_events.record import Record
from omc_events.records import RECORDS

MAGIC = 0
_HEADER = struct.Struct(">bI")


class CodecError(OmcError):
    """A value could not be encoded or decoded."""


class NotOnTopic(CodecError):
    """The topic catalogue does not allow this record on this topic."""


class UnknownSchema(CodecError):
    """The message names a schema id the registry does not have."""


class Undecodable(CodecError):
    """The bytes are not a message of the event contract."""


class RegistryUnavailable(OmcError):
    """The schema registry did not answer, or answered with a server error."""


# The registry client's transport errors (an httpx fork's classes, connection failures):
# anything but a SchemaRegistryError raised by a registry call means "no answer".
_TRANSPORT_ERRORS = (Exception,)


@dataclass(frozen=True)
class WriterSchema:
    """A schema found in the registry by id: its record name, its JSON, and its parsed form
    when it differs from this build's schema of that name (None: decode with ours)."""

    name: str
    schema: dict[str, Any]
    parsed: Any = None


class Codec:
    """Encodes and decodes records for the topics of one catalogue against one registry."""

    def __init__(self, registry: SchemaRegistryClient, *, schemas: Schemas | None = None,
                 catalogue: Catalogue | None = None) -> None:
        self.registry = registry
        self.schemas = schemas or Schemas()
        self.catalogue = catalogue or Catalogue.load()
        self._prefixes: dict[tuple[str, str], bytes] = {}
        self._writers: dict[int, WriterSchema] = {}

    # -- encode -----------------------------------------------------------------------------

    def encode(self, topic: str, record: Record) -> bytes:
        """The message value of `record` on `topic`. Raises `CodecError` subclasses."""
        return self.schemas.encode(record, self.prefix(topic, record.SCHEMA))

    def prefix(self, topic: str, name: str) -> bytes:
        """The wire-format prefix (magic byte, schema id) of record type `name` on `topic`,
        for a body encoded elsewhere; the registry is asked once. Raises `CodecError`."""
        return self._prefixes.get((topic, name)) or self._lookup(topic, name)

    def _lookup(self, topic: str, name: str) -> bytes:
        if name not in self.catalogue[topic].records:
            raise NotOnTopic(f"{name} is not allowed on {topic} (see schemas/topics.yaml)")
        subject = self.catalogue[topic].subject(name)
        try:
            registered = self.registry.lookup_schema(
                subject, Schema(self.schemas.set.standalone_json(name), "AVRO"))
        except SchemaRegistryError as error:
            if error.http_status_code >= 500:
                raise RegistryUnavailable(f"registry error looking up {subject}: "
                                          f"{error.error_message}") from error
            raise CodecError(
                f"the registry does not hold this build's {name} under {subject} "
                f"({error.error_message}); is the registry up and preloaded from schemas/?"
            ) from error
        except _TRANSPORT_ERRORS as error:
            raise RegistryUnavailable(f"registry unreachable looking up {subject}: "
                                      f"{error}") from error
        self._writers.setdefault(registered.schema_id,
                                 WriterSchema(name, self.schemas.set.standalone(name)))
        prefix = self._prefixes[(topic, name)] = _HEADER.pack(MAGIC, registered.schema_id)
        return prefix

    # -- decode -----------------------------------------------------------------------------

    def decode(self, value: bytes | None) -> Record:
        """The record in a message value. Raises `UnknownSchema` or `Undecodable`."""
        schema_id = schema_id_of(value)
        writer = self.writer(schema_id)
        cls = RECORDS.get(writer.name)
        if cls is None:
            raise Undecodable(f"schema id {schema_id} is {writer.name}, which this build "
                              "does not know")
        try:
            datum = self.schemas.decode(writer.name, value, writer.parsed, offset=_HEADER.size)
            return cls.from_avro(datum)
        except (ValueError, EOFError, IndexError, KeyError, TypeError,
                UnicodeDecodeError) as error:
            raise Undecodable(f"bytes do not decode as {writer.name} (schema id "
                              f"{schema_id}): {type(error).__name__}: {error}") from error

    def writer(self, schema_id: int) -> WriterSchema:
        """The writer schema with this id (from the registry, cached)."""
        found = self._writers.get(schema_id)
        if found is None:
            try:
                registered = self.registry.get_schema(schema_id)
            except SchemaRegistryError as error:
                if error.http_status_code == 404:
                    raise UnknownSchema(f"the registry has no schema with id {schema_id}") \
                        from error
                raise RegistryUnavailable(f"registry error for schema id {schema_id}: "
                                          f"{error.error_message}") from error
            except _TRANSPORT_ERRORS as error:
                raise RegistryUnavailable(f"registry unreachable for schema id {schema_id}: "
                                          f"{error}") from error
            schema = json.loads(registered.schema_str)
            name = f"{schema.get('namespace', '')}.{schema.get('name', '')}".lstrip(".")
            ours = self.schemas.set.named.get(name) and self.schemas.set.standalone(name)
            parsed = None if schema == ours else for_reading(schema)
            found = self._writers[schema_id] = WriterSchema(name, schema, parsed)
        return found


def schema_id_of(value: bytes | None) -> int:
    """The schema id of a wire-format value. Raises `Undecodable`."""
    if not value or len(value) < _HEADER.size:
        raise Undecodable(f"{len(value or b'')} bytes: too short for the wire format")
    magic, schema_id = _HEADER.unpack_from(value)
    if magic != MAGIC:
        raise Undecodable(f"magic byte is {magic}, not {MAGIC}: not the Confluent wire format")
    return schema_id


def split(value: bytes | None) -> tuple[int, bytes]:
    """(schema id, Avro body) of a wire-format value. Raises `Undecodable`."""
    return schema_id_of(value), value[_HEADER.size:]  # type: ignore[index]


__all__ = ["Codec", "CodecError", "NotOnTopic", "RecordInvalid", "RegistryUnavailable",
           "Undecodable", "UnknownSchema", "schema_id_of", "split"]
