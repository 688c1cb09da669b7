"""Registering the project's own schemas at start.

Every record of the topic catalogue (`schemas/topics.yaml`) is registered under
`<topic>-<record full name>` (TopicRecordNameStrategy) with its self-contained schema, as any
client would: idempotently, and checked against what the subject already holds. Without a
topics.yaml there is nothing to preload (a warning says so); a preload the registered schemas
refuse fails the start, naming the subject and every incompatibility.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omc_errors import OmcError
from omc_events.catalogue import Catalogue
from omc_events.schemas import SchemaSet
from omc_registry import avro
from omc_registry.errors import IncompatibleSchema, InvalidSchema, RegistryStartFailed
from omc_registry.store import SchemaStore

log = logging.getLogger("omc.registry.preload")


def catalogue_schemas(schemas_dir: Path) -> list[tuple[str, str]] | None:
    """(subject, schema JSON) for every record on every topic; None without a topics.yaml."""
    topics_file = schemas_dir / "topics.yaml"
    if not topics_file.is_file():
        log.warning("no %s: nothing to preload", topics_file)
        return None
    try:
        catalogue = Catalogue.load(topics_file)
        schemas = SchemaSet.load(schemas_dir / "avro")
        return [(subject, schemas.standalone_json(record))
                for subject, record in catalogue.subjects()]
    except OmcError as error:
        raise RegistryStartFailed(f"cannot preload {schemas_dir}: {error}") from error


async def preload(store: SchemaStore, schemas_dir: Path) -> int:
    """Register the catalogue's schemas; returns how many versions were new."""
    subjects = catalogue_schemas(schemas_dir)
    if subjects is None:
        return 0
    created = 0
    for subject, text in subjects:
        try:
            registration = await store.register(subject, avro.parse(text))
        except InvalidSchema as error:
            raise RegistryStartFailed(
                f"preloading {subject} from {schemas_dir}: {error}") from error
        except IncompatibleSchema as error:
            raise RegistryStartFailed(
                f"preloading {subject} from {schemas_dir}: {error}.\n"
                "Make the change compatible (for example, give a new field a default), or "
                "publish the breaking change under a new major version of the topic. A local "
                "registry holding a discarded draft can start over on a fresh topic "
                "(OMC_REGISTRY_TOPIC=<new name>)."
            ) from error
        created += registration.created
    log.info("preloaded %d subjects from %s (%d new versions)", len(subjects), schemas_dir,
             created)
    return created
