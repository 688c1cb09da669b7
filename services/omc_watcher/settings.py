"""What the chain watcher is configured with: the project's settings plus its own.

    OMC_WATCHER_CHAIN_ID         chain watched (default OMC_CHAIN_ID, 31337); checked against
                                 the node's eth_chainId at start
    OMC_WATCHER_RPC_URL          HTTP JSON-RPC endpoint (default OMC_CHAIN_RPC_URL)
    OMC_WATCHER_WS_URL           WebSocket endpoint for newHeads (default: the RPC URL with
                                 ws:// or wss://; "off": poll only)
    OMC_WATCHER_CONFIRMATIONS    blocks from the inclusion block to the head, both included,
                                 that make a transaction final (2)
    OMC_WATCHER_POLL_MS          polling interval; with newHeads the longest wait between
                                 two looks at the chain (1000)
    OMC_WATCHER_WINDOW           recent blocks kept to detect reorgs; a deeper reorg stops the
                                 watcher (256)
    OMC_WATCHER_LOG_CHUNK        blocks per eth_getLogs request when backfilling (2000)
    OMC_WATCHER_RPC_BATCH        JSON-RPC calls per batch request (100)
    OMC_WATCHER_SUBSCRIPTIONS    contract event subscriptions: a JSON file path, or inline JSON
                                 [{"id", "address", "topics"?, "abi_event"?, "from_block"}]
    OMC_WATCHER_METRICS_PORT     Prometheus /metrics, served once the log is read (0: off;
                                 `omc up` sets the stack's 18095)
    OMC_WATCHER_METRICS_HOST     interface of /metrics (127.0.0.1; 0.0.0.0 in a pod)
    OMC_WATCHER_TX_TOPIC         (omc.tx.events.v1)
    OMC_WATCHER_CHAIN_TOPIC      (omc.chain.events.v1)

Every invalid value is reported at once, with the project's, as a `ConfigError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from omc_config import Settings
from omc_config.options import EnvOptions
from omc_errors import OmcError
from omc_watcher.subscriptions import Subscription, parse_subscriptions

TX_TOPIC = "omc.tx.events.v1"
CHAIN_TOPIC = "omc.chain.events.v1"


@dataclass(frozen=True)
class WatcherSettings:
    base: Settings
    chain_id: int
    rpc_url: str
    ws_url: str | None
    confirmations: int
    poll_seconds: float
    window: int
    log_chunk: int
    rpc_batch: int
    subscriptions: tuple[Subscription, ...]
    tx_topic: str
    chain_topic: str
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WatcherSettings:
        options = EnvOptions(env)
        base = options.base
        rpc_url = options.text("OMC_WATCHER_RPC_URL", base.chain_rpc_url)
        if urlsplit(rpc_url).scheme not in ("http", "https"):
            options.problem(f"OMC_WATCHER_RPC_URL is not an http(s) URL ({_scheme(rpc_url)})")
        ws = options.text("OMC_WATCHER_WS_URL", "")
        ws_url: str | None = ws or _ws_of(rpc_url)
        if ws == "off":
            ws_url = None
        elif ws_url is not None and urlsplit(ws_url).scheme not in ("ws", "wss"):
            options.problem(f"OMC_WATCHER_WS_URL is not a ws(s) URL ({_scheme(ws_url)})")
        settings = cls(
            base=base,
            chain_id=options.number("OMC_WATCHER_CHAIN_ID", base.chain_id, 1, 2**53),
            rpc_url=rpc_url, ws_url=ws_url,
            confirmations=options.number("OMC_WATCHER_CONFIRMATIONS", 2, 1, 10_000),
            poll_seconds=options.number("OMC_WATCHER_POLL_MS", 1000, 10, 600_000) / 1000,
            window=options.number("OMC_WATCHER_WINDOW", 256, 8, 100_000),
            log_chunk=options.number("OMC_WATCHER_LOG_CHUNK", 2000, 1, 1_000_000),
            rpc_batch=options.number("OMC_WATCHER_RPC_BATCH", 100, 1, 10_000),
            subscriptions=_subscriptions(options),
            tx_topic=options.topic("OMC_WATCHER_TX_TOPIC", TX_TOPIC),
            chain_topic=options.topic("OMC_WATCHER_CHAIN_TOPIC", CHAIN_TOPIC),
            metrics_port=options.number("OMC_WATCHER_METRICS_PORT", 0, 0, 65535),
            metrics_host=options.text("OMC_WATCHER_METRICS_HOST", "127.0.0.1"),
        )
        if settings.confirmations > settings.window:
            options.problem("OMC_WATCHER_CONFIRMATIONS must not exceed OMC_WATCHER_WINDOW")
        options.check()
        return settings


def _scheme(url: str) -> str:
    """Only the scheme of a URL, for messages: its path or query may hold credentials."""
    return f"scheme {urlsplit(url).scheme or 'none'!r}"


def _ws_of(url: str) -> str | None:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme)
    return urlunsplit(parts._replace(scheme=scheme)) if scheme else None


def _subscriptions(options: EnvOptions) -> tuple[Subscription, ...]:
    text = options.text("OMC_WATCHER_SUBSCRIPTIONS", "")
    if not text:
        return ()
    try:
        if not text.lstrip().startswith("["):
            text = Path(text).read_text(encoding="utf-8")
        return parse_subscriptions(json.loads(text))
    except OSError as error:
        options.problem(f"OMC_WATCHER_SUBSCRIPTIONS: cannot read the file: {error.strerror}")
    except ValueError as error:
        options.problem(f"OMC_WATCHER_SUBSCRIPTIONS: not valid JSON: {error}")
    except OmcError as error:
        options.problem(f"OMC_WATCHER_SUBSCRIPTIONS: {error}")
    return ()
