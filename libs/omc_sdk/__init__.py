"""omc_sdk: the typed Python client of OpenMCP-Chain's HTTP API (docs/api.md).

    from omc_sdk import Client
    with Client() as omc:          # base URL and key: arguments, else OMC_API_URL, OMC_API_KEY
        task_id = omc.submit_task("agent-1", "pay 1 wei to 0x…", chain_id=31337).aggregate_id
        print(omc.get_task(task_id).status)

    config.py   settings (OMC_API_URL, OMC_API_KEY)   routes.py  one function per route
    models.py   the items, as frozen dataclasses      retry.py   when to retry, how long to wait
    errors.py   the exception tree                    sse.py     the event-stream decoder
    client.py   `Client` (sync)                       aio.py     `AsyncClient`, its twin
    testing.py  `FakeGateway`, an in-memory gateway behind `httpx.MockTransport`
"""

from omc_sdk.aio import AsyncClient
from omc_sdk.client import Client
from omc_sdk.config import DEFAULT_API_URL, ClientSettings
from omc_sdk.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidArgument,
    InvalidRequest,
    NotFound,
    OmcApiError,
    OmcClientError,
    ProtocolError,
    RateLimited,
    ServerError,
    SettingsError,
    TransportError,
    Unauthorized,
    Unavailable,
)
from omc_sdk.models import (
    TERMINAL_EVENTS,
    TERMINAL_STATUSES,
    Accepted,
    Agent,
    AsOf,
    Health,
    Page,
    Policy,
    Receipt,
    Task,
    TaskEvent,
    TokenLimit,
    Transaction,
)
from omc_sdk.retry import RetryPolicy

__all__ = [
    "DEFAULT_API_URL",
    "TERMINAL_EVENTS",
    "TERMINAL_STATUSES",
    "Accepted",
    "Agent",
    "AsOf",
    "AsyncClient",
    "Client",
    "ClientSettings",
    "Conflict",
    "FieldProblem",
    "Forbidden",
    "Health",
    "InvalidArgument",
    "InvalidRequest",
    "NotFound",
    "OmcApiError",
    "OmcClientError",
    "Page",
    "Policy",
    "ProtocolError",
    "RateLimited",
    "Receipt",
    "RetryPolicy",
    "ServerError",
    "SettingsError",
    "Task",
    "TaskEvent",
    "TokenLimit",
    "Transaction",
    "TransportError",
    "Unauthorized",
    "Unavailable",
]
