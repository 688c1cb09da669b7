"""The registry's errors, each carrying its HTTP status and Confluent error code.

    RegistryError                      answered as {"error_code": ..., "message": ...}
    ├── SubjectNotFound        404 40401
    ├── VersionNotFound        404 40402
    ├── SchemaNotFound         404 40403
    ├── SubjectLevelNotFound   404 40408   the subject has no level of its own
    ├── BadRequest             400   400   the body is not the JSON object expected
    ├── DeleteRefused          405   405   schemas are never deleted (the log is an audit trail)
    ├── IncompatibleSchema     409   409   refused by the subject's compatibility level
    ├── InvalidSchema          422 42201   not a valid Avro schema, or not AVRO
    ├── InvalidVersion         422 42202
    ├── InvalidLevel           422 42203   an unknown compatibility level
    └── StoreFailed            500 50001   the change could not be written to Kafka
    RegistryStartFailed        the registry cannot start (Kafka unreachable, bad topic,
                               a preload the registered schemas refuse); the process exits 1
"""

from __future__ import annotations

from omc_errors import OmcError


class RegistryError(OmcError):
    """A request the registry refuses; `str()` is the message a client sees."""

    status = 500
    code = 50001

    def body(self) -> dict[str, object]:
        return {"error_code": self.code, "message": str(self)}


class SubjectNotFound(RegistryError):
    status, code = 404, 40401

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' not found.")


class VersionNotFound(RegistryError):
    status, code = 404, 40402

    def __init__(self, subject: str, version: object) -> None:
        super().__init__(f"Version {version} not found for subject '{subject}'.")


class SchemaNotFound(RegistryError):
    status, code = 404, 40403


class SubjectLevelNotFound(RegistryError):
    status, code = 404, 40408

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"Subject '{subject}' does not have subject-level compatibility configured; "
            "ask with ?defaultToGlobal=true for the level that applies to it."
        )


class BadRequest(RegistryError):
    status, code = 400, 400


class DeleteRefused(RegistryError):
    status, code = 405, 405


class IncompatibleSchema(RegistryError):
    status, code = 409, 409


class InvalidSchema(RegistryError):
    status, code = 422, 42201


class InvalidVersion(RegistryError):
    status, code = 422, 42202

    def __init__(self, version: object) -> None:
        super().__init__(
            f"The specified version '{version}' is not a valid version id. Allowed values are "
            "between [1, 2^31-1] and the string \"latest\"."
        )


class InvalidLevel(RegistryError):
    status, code = 422, 42203


class StoreFailed(RegistryError):
    status, code = 500, 50001


class RegistryStartFailed(OmcError):
    """The registry cannot start; the message says why and what to do."""
