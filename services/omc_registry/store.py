"""The registry's state, and the one way it changes: written to the log first, then applied.

State: subjects and their versions (1, 2, ... never deleted), schema ids (global: the same
schema has the same id under every subject), the global compatibility level and the
subjects' own levels. It is a fold of the log's records (`apply`), so opening the store
replays the log and a restart finds every id and version where it was.

Writes are serialised by one lock: check, assign the next id or version, append to the log
and wait for the acknowledgement, then apply. A write that fails leaves the state untouched.
Only one registry process may write to a log (see the package docstring).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from omc_events import compat
from omc_registry import avro
from omc_registry.errors import (
    IncompatibleSchema,
    InvalidLevel,
    InvalidVersion,
    RegistryError,
    RegistryStartFailed,
    SchemaNotFound,
    SubjectLevelNotFound,
    SubjectNotFound,
    VersionNotFound,
)
from omc_registry.log import SchemaLog

log = logging.getLogger("omc.registry.store")

DEFAULT_LEVEL = "BACKWARD_TRANSITIVE"
MAX_VERSION = 2**31 - 1


@dataclass(frozen=True)
class Version:
    """One version of a subject."""

    subject: str
    version: int
    id: int
    schema: str
    schema_type: str = "AVRO"

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "version": self.version, "id": self.id,
                "schema": self.schema}


@dataclass(frozen=True)
class Registration:
    """The answer to a registration: the id, the version, and whether it is new."""

    id: int
    version: int
    created: bool


def parse_version(spec: object) -> int | None:
    """A version number from a path segment; None means the latest. Raises `InvalidVersion`."""
    text = str(spec)
    if text in ("latest", "-1"):
        return None
    if text.isdecimal() and 1 <= int(text) <= MAX_VERSION:
        return int(text)
    raise InvalidVersion(spec)


def parse_level(value: object) -> str:
    level = str(value).upper() if isinstance(value, str) else ""
    if level not in compat.LEVELS:
        raise InvalidLevel(
            f"Invalid compatibility level {value!r}. Valid values are: {', '.join(compat.LEVELS)}"
        )
    return level


class SchemaStore:
    """Subjects, versions, ids and levels, kept in a `SchemaLog`."""

    def __init__(self, log: SchemaLog, *, default_level: str = DEFAULT_LEVEL) -> None:
        self.log = log
        self.default_level = parse_level(default_level)
        self._write = asyncio.Lock()
        self._reset()

    def _reset(self) -> None:
        self._subjects: dict[str, dict[int, Version]] = {}
        self._schemas: dict[int, str] = {}  # id -> schema text
        self._ids: dict[str, int] = {}  # canonical form -> id
        self._levels: dict[str | None, str] = {}  # subject (None = global) -> level

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Rebuild the state from every record of the log."""
        self._reset()
        records = await self.log.open()
        for key, value in records:
            self.apply(key, value)
        log.info("state rebuilt: %d subjects, %d schemas, %d records",
                 len(self._subjects), len(self._schemas), len(records))

    async def close(self) -> None:
        await self.log.close()

    def apply(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        """Fold one log record into the state."""
        kind = key.get("keytype")
        if value is None:  # a tombstone: this registry never writes them, so never deletes
            log.warning("ignored a tombstone for %s", key)
            return
        try:
            if kind == "SCHEMA":
                self._apply_schema(Version(
                    subject=value["subject"], version=int(value["version"]), id=int(value["id"]),
                    schema=value["schema"], schema_type=value.get("schemaType", "AVRO"),
                ))
            elif kind == "CONFIG":
                self._levels[key.get("subject")] = parse_level(value["compatibilityLevel"])
            else:
                log.warning("ignored a record of unknown kind %s", key)
        except (KeyError, TypeError, ValueError, RegistryError) as error:
            raise RegistryStartFailed(
                f"the registry log holds a record it cannot read: {key} -> {value} ({error})"
            ) from error

    def _apply_schema(self, version: Version) -> None:
        canonical = avro.canonical(avro.parse(version.schema, version.schema_type).document)
        known = self._ids.get(canonical)
        if known is not None and known != version.id:
            raise ValueError(f"schema already has id {known}")
        if version.id in self._schemas and self._ids.get(canonical) != version.id:
            raise ValueError(f"id {version.id} already names another schema")
        self._schemas[version.id] = version.schema
        self._ids[canonical] = version.id
        self._subjects.setdefault(version.subject, {})[version.version] = version

    # -- reading ----------------------------------------------------------------------------

    def subjects(self, prefix: str = "") -> list[str]:
        return sorted(s for s in self._subjects if s.startswith(prefix))

    def versions(self, subject: str) -> list[int]:
        return sorted(self._versions(subject))

    def _versions(self, subject: str) -> dict[int, Version]:
        if subject not in self._subjects:
            raise SubjectNotFound(subject)
        return self._subjects[subject]

    def version(self, subject: str, spec: object) -> Version:
        """A version by number or 'latest' (-1)."""
        number = parse_version(spec)
        versions = self._versions(subject)
        if number is None:
            return versions[max(versions)]
        if number not in versions:
            raise VersionNotFound(subject, number)
        return versions[number]

    def schema(self, schema_id: int) -> str:
        if schema_id not in self._schemas:
            raise SchemaNotFound(f"Schema {schema_id} not found")
        return self._schemas[schema_id]

    def usages(self, schema_id: int) -> list[Version]:
        """Every (subject, version) holding the schema with this id."""
        self.schema(schema_id)
        return [v for subject in sorted(self._subjects)
                for _, v in sorted(self._subjects[subject].items()) if v.id == schema_id]

    def lookup(self, subject: str, schema: avro.Schema) -> Version:
        """The version of `subject` holding this schema."""
        for version in self._versions(subject).values():
            if self._ids.get(schema.canonical) == version.id:
                return version
        raise SchemaNotFound(f"Schema not found under subject '{subject}'")

    def level(self, subject: str | None = None, *, default_to_global: bool = True) -> str:
        """The compatibility level of a subject (None = the global one)."""
        if subject is not None and subject in self._levels:
            return self._levels[subject]
        if subject is not None and not default_to_global:
            raise SubjectLevelNotFound(subject)
        return self._levels.get(None, self.default_level)

    def incompatibilities(self, subject: str, schema: avro.Schema,
                          against: object = "all") -> list[str]:
        """What the subject's level finds wrong with `schema`: against every version the level
        looks at (`against="all"`), or against one version."""
        level = self.level(subject)
        if against == "all":
            if subject not in self._subjects:
                return []
            previous = [self._subjects[subject][n] for n in self.versions(subject)]
        else:
            previous = [self.version(subject, against)]
        return compat.check_level(level, schema.text, [v.schema for v in previous],
                                  versions=[v.version for v in previous])

    # -- writing ----------------------------------------------------------------------------

    async def register(self, subject: str, schema: avro.Schema) -> Registration:
        """Register `schema` under `subject`: idempotent, checked against the subject's level."""
        async with self._write:
            versions = self._subjects.get(subject, {})
            known_id = self._ids.get(schema.canonical)
            for version in versions.values():
                if version.id == known_id:
                    return Registration(version.id, version.version, created=False)
            problems = self.incompatibilities(subject, schema)
            if problems:
                raise IncompatibleSchema(
                    f"Schema being registered is incompatible with an earlier schema for subject "
                    f"'{subject}' (compatibility {self.level(subject)}): " + "; ".join(problems)
                )
            schema_id = known_id if known_id is not None else max(self._schemas, default=0) + 1
            number = max(versions, default=0) + 1
            new = Version(subject=subject, version=number, id=schema_id, schema=schema.text)
            await self.log.append(
                {"keytype": "SCHEMA", "subject": subject, "version": number},
                {"subject": subject, "version": number, "id": schema_id, "schemaType": "AVRO",
                 "schema": schema.text},
            )
            self._apply_schema(new)
            log.info("registered %s version %d (id %d)", subject, number, schema_id)
            return Registration(schema_id, number, created=True)

    async def set_level(self, subject: str | None, level: object) -> str:
        """Set the global level (subject None) or a subject's own."""
        level = parse_level(level)
        async with self._write:
            if self._levels.get(subject) != level:
                await self.log.append({"keytype": "CONFIG", "subject": subject},
                                      {"compatibilityLevel": level})
                self._levels[subject] = level
                log.info("compatibility of %s set to %s", subject or "(global)", level)
        return level

