"""The gateway: the HTTP API of OpenMCP-Chain (docs/api.md is its contract).

Commands are validated, authenticated, sealed and produced to `omc.commands.v1` (202 once
Kafka acknowledged them); queries read the MySQL and Redis projections through their
`queries.py` modules; errors are `application/problem+json` everywhere.

    app.py          create_app(settings, *, commands, read_model, keys, limiter, idempotency,
                    checks): the Starlette app; resources open in its lifespan
    wiring.py       the composition root: real adapters (Kafka, MySQL, Redis) from settings
    __main__.py     `python -m omc_gateway`: uvicorn (uvloop, httptools) on OMC_GATEWAY_PORT
    settings.py     the gateway's own settings (port, body limit, rate limit, timeouts)
    errors.py       the exception tree, each error a problem type
    endpoint.py     route metadata: scope, parameters, body; the request pipeline
    fields.py       declarative field checks, which also give the OpenAPI schemas
    bodies.py       the request bodies of the commands (and the policy object)
    commands.py     typed, sealed command records from validated bodies; command ids
    routes_*.py     command, query, live (SSE) and operations (health, metrics) routes
    openapi.py      the OpenAPI 3.1 document, generated from the endpoints
    ports.py        the interfaces the app depends on; memory.py implements them in memory
    apikeys.py      API keys: format, hashing, the `api_keys` table, the cached key store
    publisher.py    the Kafka command bus (group commit on a producer thread)
    readmodel.py    the projections' queries behind the ReadModel port, errors translated
    redisports.py   rate limiter and idempotency store in Redis
    mysqlpool.py    a lazy MySQL connection pool (the gateway starts while MySQL is down)
    observe.py      JSON logs with correlation ids, Prometheus metrics, the ASGI middleware
"""


def migrate(settings):  # a thin re-export: importing the package stays cheap
    """Apply the gateway's migrations (`sql/`, component "gateway") to the settings' MySQL
    database; returns the names applied. `omc db migrate` applies the same files."""
    from omc_gateway.apikeys import migrate as apply

    return apply(settings)
