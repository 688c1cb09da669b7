"""What the agent runtime is configured with: the project's settings plus its own.

    OMC_RUNTIME_LLM                 local (the offline planner, default) or openai (any
                                    OpenAI-compatible endpoint)
    OMC_RUNTIME_LLM_BASE_URL        the endpoint for openai (empty: api.openai.com)
    OMC_RUNTIME_LLM_PROVIDER        the provider name recorded in events (openai)
    OMC_RUNTIME_LLM_API_KEY_FILE    file holding the endpoint's API key (never an event)
    OMC_RUNTIME_LLM_PRICES          model=input_per_1k:output_per_1k,… in US dollars
    OMC_RUNTIME_LLM_TIMEOUT         seconds per model call (60)
    OMC_RUNTIME_LLM_CACHE_TTL       seconds an inference stays in the Redis cache (0: off)
    OMC_RUNTIME_ATTESTOR_KEY_FILE   the secp256k1 key that signs inferences (hex); default
                                    <stack dir>/runtime/attestor.key, made on first start
    OMC_RUNTIME_WALL_SECONDS        most wall time one task may take (600)
    OMC_RUNTIME_APPROVAL_SECONDS    how long an approval waits before it counts as rejected
                                    (3600)
    OMC_RUNTIME_METRICS_PORT        Prometheus /metrics port (18093; the stack's setting),
                                    served once the views are current
    OMC_RUNTIME_METRICS_HOST        interface of /metrics (127.0.0.1; 0.0.0.0 in a pod)

Every invalid value is reported at once, with the project's, as a `ConfigError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from omc_config import Settings
from omc_config.options import EnvOptions


@dataclass(frozen=True)
class RuntimeSettings:
    base: Settings
    llm: str
    llm_base_url: str | None
    llm_provider: str
    llm_api_key_file: Path | None
    llm_prices: dict[str, tuple[Decimal, Decimal]]
    llm_timeout: int
    llm_cache_ttl: int
    attestor_key_file: Path
    attestor_key_is_local: bool
    wall_seconds: int
    approval_seconds: int
    metrics_port: int
    metrics_host: str

    @classmethod
    def from_env(cls, env=None) -> RuntimeSettings:
        options = EnvOptions(env)
        llm = options.text("OMC_RUNTIME_LLM", "local")
        if llm not in ("local", "openai"):
            options.problem(f"OMC_RUNTIME_LLM={llm!r} is not local or openai")
        key_file = options.text("OMC_RUNTIME_LLM_API_KEY_FILE", "")
        local_key = options.base.stack.dir / "runtime" / "attestor.key"
        settings = cls(
            base=options.base, llm=llm,
            llm_base_url=options.text("OMC_RUNTIME_LLM_BASE_URL", "") or None,
            llm_provider=options.text("OMC_RUNTIME_LLM_PROVIDER", "openai"),
            llm_api_key_file=Path(key_file) if key_file else None,
            llm_prices=_prices(options),
            llm_timeout=options.number("OMC_RUNTIME_LLM_TIMEOUT", 60, 1, 3600),
            llm_cache_ttl=options.number("OMC_RUNTIME_LLM_CACHE_TTL", 0, 0, 10**8),
            attestor_key_file=Path(options.text("OMC_RUNTIME_ATTESTOR_KEY_FILE", str(local_key))),
            attestor_key_is_local=not options.text("OMC_RUNTIME_ATTESTOR_KEY_FILE", ""),
            wall_seconds=options.number("OMC_RUNTIME_WALL_SECONDS", 600, 1, 10**7),
            approval_seconds=options.number("OMC_RUNTIME_APPROVAL_SECONDS", 3600, 1, 10**7),
            metrics_port=options.base.stack.runtime_metrics_port,
            metrics_host=options.text("OMC_RUNTIME_METRICS_HOST", "127.0.0.1"),
        )
        options.check()
        return settings


def _prices(options: EnvOptions) -> dict[str, tuple[Decimal, Decimal]]:
    prices: dict[str, tuple[Decimal, Decimal]] = {}
    for item in filter(None, options.text("OMC_RUNTIME_LLM_PRICES", "").split(",")):
        model, _, pair = item.strip().partition("=")
        inp, _, out = pair.partition(":")
        try:
            prices[model] = (Decimal(inp), Decimal(out))
        except InvalidOperation:
            options.problem(f"OMC_RUNTIME_LLM_PRICES: {item!r} is not model=input:output")
    return prices
