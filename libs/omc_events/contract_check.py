"""Is the contract in the working tree safe to release? Every schema must parse and read every
earlier released version of itself (BACKWARD_TRANSITIVE), and no record may disappear.

Released versions come from git history (`history.released`) and, on request, from a schema
registry (every version of every catalogue subject).
"""

from __future__ import annotations

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from omc_config import Settings
from omc_events import compat, history
from omc_events.catalogue import Catalogue
from omc_events.schemas import SchemaSet

LEVEL = "BACKWARD_TRANSITIVE"


def check_parse(schemas: SchemaSet) -> list[str]:
    """A message for each schema that fastavro cannot parse."""
    problems = []
    for name in schemas:
        try:
            fastavro.parse_schema(schemas.standalone(name))
        except Exception as error:
            problems.append(f"{name}: does not parse: {error}")
    return problems


def check_against(schemas: SchemaSet, released: dict[str, list[str]], source: str) -> list[str]:
    """Incompatibilities of the current schemas with `released` versions (oldest first)."""
    problems = []
    for name, versions in sorted(released.items()):
        if name not in schemas.named:
            problems.append(f"{name}: released in {source} but removed; records are never "
                            "removed from the contract (deprecate it instead)")
            continue
        for problem in compat.check_level(LEVEL, schemas.standalone(name), versions):
            problems.append(f"{name}: incompatible with {source}: {problem}")
    return problems


def check_history(schemas: SchemaSet) -> list[str]:
    """Parse errors, and incompatibilities with every version committed to git."""
    return check_parse(schemas) + check_against(schemas, history.released(), "git history")


def check_registry(schemas: SchemaSet, catalogue: Catalogue, settings: Settings) -> list[str]:
    """Incompatibilities with every version the registry holds for the catalogue's subjects."""
    client = SchemaRegistryClient({"url": settings.schema_registry_url})
    problems = []
    for subject, name in catalogue.subjects():
        try:
            versions = client.get_versions(subject)
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                continue  # not registered yet: nothing released to stay compatible with
            raise
        texts = [client.get_version(subject, v).schema.schema_str for v in sorted(versions)]
        problems += check_against(schemas, {name: texts}, f"registry subject {subject}")
    return problems
