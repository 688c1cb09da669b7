"""Exact-match inference cache in Redis, and a model wrapper that uses it.

Key: `<prefix><sha256 hex>` with prefix `omc:v1:llm:cache:` by default (injectable, so tests
use their own), the hash taken over the canonical JSON of
{"model", "parameters_json", "prompt_hash", "tools"} — the triple the contract names, plus the
names of the tools offered, because an answer calling a tool that is no longer offered must
not be served. Value: the output as JSON (`InferenceOutput.to_dict`). TTL: configurable.

`CachedModel(model, redis, ttl_seconds)` implements LanguageModel: on a hit it returns the
stored answer with cache_hit=True, 0 tokens, 0 cost and the lookup's own latency; on a miss it
asks the wrapped model and stores the answer. A Redis failure never fails an inference: it is
logged and the wrapped model answers (the cache is an optimisation, the log is the record).
The Redis client is a `redis.asyncio.Redis`, opened and closed by the caller.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from decimal import Decimal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from omc_llm.canonical import canonical_json, sha256_hex
from omc_llm.model import InferenceInput, InferenceOutput, LanguageModel
from omc_llm.prompt import prompt_hash_of

DEFAULT_PREFIX = "omc:v1:llm:cache:"
log = logging.getLogger(__name__)


def cache_key(model: str, parameters_json: str, prompt_hash: str,
              tools: tuple[str, ...] | list[str] = (), prefix: str = DEFAULT_PREFIX) -> str:
    """The Redis key of one exact request."""
    material = canonical_json({"model": model, "parameters_json": parameters_json,
                               "prompt_hash": prompt_hash, "tools": list(tools)})
    return prefix + sha256_hex(material)[2:]


def key_of(request: InferenceInput, prefix: str = DEFAULT_PREFIX) -> str:
    """The Redis key of `request`."""
    return cache_key(request.model, request.parameters_json, prompt_hash_of(request.messages),
                     request.tool_names, prefix)


class InferenceCache:
    """Stored answers by exact request."""

    def __init__(self, redis: Redis, *, ttl_seconds: int, prefix: str = DEFAULT_PREFIX) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._redis = redis
        self._ttl = ttl_seconds
        self.prefix = prefix

    async def get(self, request: InferenceInput) -> InferenceOutput | None:
        """The stored answer to `request`, or None."""
        raw = await self._redis.get(key_of(request, self.prefix))
        if raw is None:
            return None
        return InferenceOutput.from_dict(json.loads(raw))

    async def put(self, request: InferenceInput, output: InferenceOutput) -> None:
        """Store `output` as the answer to `request` for the TTL."""
        value = canonical_json(dataclasses.replace(output, cache_hit=False).to_dict())
        await self._redis.set(key_of(request, self.prefix), value, ex=self._ttl)


class CachedModel:
    """A LanguageModel answering from the cache when the exact request was seen."""

    def __init__(self, model: LanguageModel, redis: Redis, ttl_seconds: int, *,
                 prefix: str = DEFAULT_PREFIX) -> None:
        self.model = model
        self.name = model.name
        self.cache = InferenceCache(redis, ttl_seconds=ttl_seconds, prefix=prefix)

    async def complete(self, request: InferenceInput) -> InferenceOutput:
        started = time.monotonic()
        try:
            stored = await self.cache.get(request)
        except (RedisError, OSError, ValueError, KeyError) as error:
            log.warning("inference cache read failed (%s); asking the model",
                        type(error).__name__)
            stored = None
        if stored is not None:
            return dataclasses.replace(
                stored, cache_hit=True, prompt_tokens=0, completion_tokens=0,
                cost_usd=Decimal(0), latency_ms=int((time.monotonic() - started) * 1000))
        output = await self.model.complete(request)
        try:
            await self.cache.put(request, output)
        except (RedisError, OSError) as error:
            log.warning("inference cache write failed (%s)", type(error).__name__)
        return output

