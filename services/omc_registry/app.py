"""The HTTP API: the Confluent Schema Registry REST API, for AVRO schemas.

    GET    /subjects                                        ?subjectPrefix=
    GET    /subjects/{subject}/versions
    GET    /subjects/{subject}/versions/{version}           version: 1.. or latest (-1)
    GET    /subjects/{subject}/versions/{version}/schema    the schema itself
    POST   /subjects/{subject}/versions                     register -> {"id"}
    POST   /subjects/{subject}                              look up -> {subject, id, version,
                                                                        schema}
    GET    /schemas/ids/{id}                                -> {"schema"}
    GET    /schemas/ids/{id}/schema
    GET    /schemas/ids/{id}/versions                       -> [{subject, version}]
    GET    /schemas/ids/{id}/subjects
    GET    /schemas/types                                   -> ["AVRO"]
    POST   /compatibility/subjects/{subject}/versions/{version}   ?verbose=true
    POST   /compatibility/subjects/{subject}/versions             against what the level checks
    GET    /config                 PUT /config              {"compatibility": LEVEL}
    GET    /config/{subject}       PUT /config/{subject}    GET with ?defaultToGlobal=true
    GET    /mode                                            READWRITE
    DELETE anything                                         refused: schemas are never deleted

Answers are `application/vnd.schemaregistry.v1+json`; request bodies are read as JSON
whatever their content type says. Errors are Confluent bodies, {"error_code", "message"}.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omc_errors import OmcError
from omc_registry import avro
from omc_registry.errors import BadRequest, DeleteRefused, RegistryError, SchemaNotFound
from omc_registry.preload import preload
from omc_registry.settings import RegistrySettings
from omc_registry.store import SchemaStore, parse_version

log = logging.getLogger("omc.registry.app")

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
Handler = Callable[[Request], Awaitable[Response]]


class RegistryResponse(JSONResponse):
    media_type = MEDIA_TYPE


def _answer(content: Any, status: int = 200) -> Response:
    return RegistryResponse(content, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as error:
        raise BadRequest(f"The request body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _schema(body: dict[str, Any]) -> avro.Schema:
    if "schema" not in body:
        raise BadRequest("The request body has no 'schema'.")
    return avro.parse(body["schema"], body.get("schemaType"), body.get("references"))


def _schema_id(request: Request) -> int:
    text = request.path_params["id"]
    if not text.isdecimal():
        raise SchemaNotFound(f"Schema {text} not found")
    return int(text)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


class Routes:
    """The handlers, over one store."""

    def __init__(self, store: SchemaStore) -> None:
        self.store = store

    async def root(self, request: Request) -> Response:
        return _answer({})

    async def subjects(self, request: Request) -> Response:
        return _answer(self.store.subjects(request.query_params.get("subjectPrefix", "")))

    async def versions(self, request: Request) -> Response:
        return _answer(self.store.versions(request.path_params["subject"]))

    async def version(self, request: Request) -> Response:
        params = request.path_params
        return _answer(self.store.version(params["subject"], params["version"]).as_dict())

    async def version_schema(self, request: Request) -> Response:
        params = request.path_params
        return _answer(json.loads(self.store.version(params["subject"], params["version"]).schema))

    async def register(self, request: Request) -> Response:
        schema = _schema(await _body(request))
        registration = await self.store.register(request.path_params["subject"], schema)
        return _answer({"id": registration.id})

    async def lookup(self, request: Request) -> Response:
        schema = _schema(await _body(request))
        return _answer(self.store.lookup(request.path_params["subject"], schema).as_dict())

    async def schema_by_id(self, request: Request) -> Response:
        return _answer({"schema": self.store.schema(_schema_id(request))})

    async def raw_schema_by_id(self, request: Request) -> Response:
        return _answer(json.loads(self.store.schema(_schema_id(request))))

    async def id_versions(self, request: Request) -> Response:
        return _answer([{"subject": v.subject, "version": v.version}
                        for v in self.store.usages(_schema_id(request))])

    async def id_subjects(self, request: Request) -> Response:
        usages = self.store.usages(_schema_id(request))
        return _answer(list(dict.fromkeys(v.subject for v in usages)))

    async def types(self, request: Request) -> Response:
        return _answer(list(avro.SCHEMA_TYPES))

    async def compatibility(self, request: Request) -> Response:
        subject = request.path_params["subject"]
        against = request.path_params.get("version", "all")
        if against != "all":
            parse_version(against)  # an invalid version is refused before the body is read
        problems = self.store.incompatibilities(subject, _schema(await _body(request)), against)
        answer: dict[str, Any] = {"is_compatible": not problems}
        if _flag(request, "verbose"):
            answer["messages"] = problems
        return _answer(answer)

    async def get_config(self, request: Request) -> Response:
        subject = request.path_params.get("subject")
        level = self.store.level(subject, default_to_global=_flag(request, "defaultToGlobal"))
        return _answer({"compatibilityLevel": level})

    async def put_config(self, request: Request) -> Response:
        body = await _body(request)
        level = await self.store.set_level(request.path_params.get("subject"),
                                           body.get("compatibility"))
        return _answer({"compatibility": level})

    async def get_mode(self, request: Request) -> Response:
        return _answer({"mode": "READWRITE"})

    async def refuse_delete(self, request: Request) -> Response:
        what = "configuration" if request.url.path.startswith("/config") else "schemas"
        hint = (" Change a level with PUT instead." if what == "configuration" else "")
        raise DeleteRefused(
            f"DELETE is not supported: this registry never deletes {what}; its log is part of "
            f"the audit trail.{hint}"
        )


def _routes(handlers: Routes) -> list[Route]:
    h = handlers
    return [
        Route("/", h.root, methods=["GET"]),
        Route("/subjects", h.subjects, methods=["GET"]),
        Route("/subjects/{subject}", h.lookup, methods=["POST"]),
        Route("/subjects/{subject}", h.refuse_delete, methods=["DELETE"]),
        Route("/subjects/{subject}/versions", h.versions, methods=["GET"]),
        Route("/subjects/{subject}/versions", h.register, methods=["POST"]),
        Route("/subjects/{subject}/versions/{version}", h.version, methods=["GET"]),
        Route("/subjects/{subject}/versions/{version}", h.refuse_delete, methods=["DELETE"]),
        Route("/subjects/{subject}/versions/{version}/schema", h.version_schema, methods=["GET"]),
        Route("/schemas/types", h.types, methods=["GET"]),
        Route("/schemas/ids/{id}", h.schema_by_id, methods=["GET"]),
        Route("/schemas/ids/{id}/schema", h.raw_schema_by_id, methods=["GET"]),
        Route("/schemas/ids/{id}/versions", h.id_versions, methods=["GET"]),
        Route("/schemas/ids/{id}/subjects", h.id_subjects, methods=["GET"]),
        Route("/compatibility/subjects/{subject}/versions", h.compatibility, methods=["POST"]),
        Route("/compatibility/subjects/{subject}/versions/{version}", h.compatibility,
              methods=["POST"]),
        Route("/config", h.get_config, methods=["GET"]),
        Route("/config", h.put_config, methods=["PUT"]),
        Route("/config", h.refuse_delete, methods=["DELETE"]),
        Route("/config/{subject}", h.get_config, methods=["GET"]),
        Route("/config/{subject}", h.put_config, methods=["PUT"]),
        Route("/config/{subject}", h.refuse_delete, methods=["DELETE"]),
        Route("/mode", h.get_mode, methods=["GET"]),
    ]


async def _registry_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RegistryError)
    if error.status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, error)
    return _answer(error.body(), error.status)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return _answer({"error_code": error.status_code,
                    "message": f"HTTP {error.status_code}: {error.detail}"}, error.status_code)


def create_app(settings: RegistrySettings, store: SchemaStore) -> Starlette:
    """The registry app over `store`; its lifespan opens the store and preloads `schemas/`."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await store.open()
            if settings.schemas_dir is not None:
                await preload(store, settings.schemas_dir)
        except OmcError as error:
            log.error("the registry cannot start: %s", error)
            await store.close()
            raise
        log.info("serving %s from topic %s at %s", ", ".join(avro.SCHEMA_TYPES), settings.topic,
                 settings.url)
        try:
            yield
        finally:
            await store.close()

    return Starlette(
        routes=_routes(Routes(store)),
        exception_handlers={RegistryError: _registry_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
