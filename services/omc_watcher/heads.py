"""New heads over WebSocket (web3.py 8 `WebSocketProvider`, eth_subscribe newHeads).

A notification only wakes the watcher (it sets `wake`); what the watcher records always comes
from its own batched reads, so a missed, duplicated or reordered notification changes
nothing but latency, and polling covers the time the socket is down. The connection is
retried with backoff until `stop` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from web3 import AsyncWeb3, WebSocketProvider

log = logging.getLogger("omc.watcher.heads")


async def follow_heads(ws_url: str, wake: asyncio.Event, stop: asyncio.Event,
                       *, max_backoff: float = 30.0) -> None:
    backoff = 1.0
    while not stop.is_set():
        try:
            async with AsyncWeb3(WebSocketProvider(ws_url)) as web3:
                await web3.eth.subscribe("newHeads")
                log.info("following newHeads over WebSocket")
                backoff = 1.0
                async for _ in web3.socket.process_subscriptions():
                    wake.set()
                    if stop.is_set():
                        return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("newHeads over WebSocket unavailable (%s); polling meanwhile",
                        type(error).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2, max_backoff)
