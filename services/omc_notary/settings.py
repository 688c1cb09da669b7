"""What the notary is configured with: the project's settings plus its own.

    OMC_NOTARY_TOPICS              event topics to checkpoint (task, agent, tx, chain events)
    OMC_NOTARY_PROOF_TOPIC         where checkpoints and anchors go (omc.proof.events.v1)
    OMC_NOTARY_TX_TOPIC            where anchor requests go, and TxConfirmed come from
                                   (omc.tx.events.v1; must be one of OMC_NOTARY_TOPICS)
    OMC_NOTARY_EVERY_EVENTS        a checkpoint after this many new events of a stream (1000;
                                   the notary's own anchoring traffic not counted)
    OMC_NOTARY_EVERY_SECONDS       ... or this long after the last one, if it has any (60;
                                   anchoring traffic alone: signed, not anchored)
    OMC_NOTARY_KEY_FILE            the secp256k1 key that signs checkpoints (hex); default
                                   <stack dir>/notary/notary.key, made on first start
    OMC_NOTARY_ANCHOR_SENDER       the anchoring account (an address whose key the tx manager
                                   holds); unset: roots are signed, not anchored
    OMC_NOTARY_ANCHOR_REGISTRY     the AnchorRegistry address; default: the local stack's
                                   (<stack dir>/chain/demo.json)
    OMC_NOTARY_ANCHOR_MAX_FEE_WEI  max fee per gas an anchor may pay (200 gwei)
    OMC_NOTARY_ANCHOR_ATTEMPTS     anchors of one checkpoint, retries included (5)
    OMC_NOTARY_ANCHOR_RETRY_SECONDS  wait after a failed anchor before the next attempt
                                   (30; doubles per attempt, at most an hour)
    OMC_NOTARY_ANCHOR_TIMEOUT_SECONDS  an anchor with no outcome this long is retried (1800)
    OMC_NOTARY_BATCH               most messages per consumed batch (500)
    OMC_NOTARY_METRICS_PORT        Prometheus /metrics once the log is read (0: off; `omc up`
                                   sets the stack's 18096); OMC_NOTARY_METRICS_HOST (127.0.0.1)

Every invalid value is reported at once, with the project's, as a `ConfigError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from omc_config import Settings
from omc_config.options import EnvOptions

EVENT_TOPICS = ("omc.task.events.v1", "omc.agent.events.v1", "omc.tx.events.v1",
                "omc.chain.events.v1")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class NotarySettings:
    base: Settings
    topics: tuple[str, ...]
    proof_topic: str
    tx_topic: str
    every_events: int
    every_seconds: int
    key_file: Path
    anchor_sender: str | None
    anchor_registry: str | None
    anchor_max_fee_wei: int
    batch: int
    anchor_attempts: int = 5
    anchor_retry_seconds: int = 30
    anchor_timeout_seconds: int = 1800
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    proofs_metrics_port: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotarySettings:
        options = EnvOptions(env)
        base = options.base
        topics = options.topics("OMC_NOTARY_TOPICS", EVENT_TOPICS)
        tx_topic = options.topic("OMC_NOTARY_TX_TOPIC", "omc.tx.events.v1")
        sender = options.text("OMC_NOTARY_ANCHOR_SENDER", "") or None
        registry = options.text("OMC_NOTARY_ANCHOR_REGISTRY", "") or None
        if sender is not None:
            if not _ADDRESS.fullmatch(sender):
                options.problem(f"OMC_NOTARY_ANCHOR_SENDER={sender!r} is not an address")
            if tx_topic not in topics:
                options.problem(f"OMC_NOTARY_TX_TOPIC {tx_topic} is not among "
                                "OMC_NOTARY_TOPICS (the notary learns anchors' outcomes there)")
            if registry is None:
                registry = _local_registry(base.stack.dir / "chain" / "demo.json")
                if registry is None:
                    options.problem("anchoring is on (OMC_NOTARY_ANCHOR_SENDER) but no "
                                    "OMC_NOTARY_ANCHOR_REGISTRY is set and the local stack has "
                                    "no AnchorRegistry (`omc chain deploy-demo`)")
            elif not _ADDRESS.fullmatch(registry):
                options.problem(f"OMC_NOTARY_ANCHOR_REGISTRY={registry!r} is not an address")
        settings = cls(
            base=base, topics=topics,
            proof_topic=options.topic("OMC_NOTARY_PROOF_TOPIC", "omc.proof.events.v1"),
            tx_topic=tx_topic,
            every_events=options.number("OMC_NOTARY_EVERY_EVENTS", 1000, 1, 10**7),
            every_seconds=options.number("OMC_NOTARY_EVERY_SECONDS", 60, 1, 10**7),
            key_file=Path(options.text("OMC_NOTARY_KEY_FILE",
                                       str(base.stack.dir / "notary" / "notary.key"))),
            anchor_sender=sender, anchor_registry=registry,
            anchor_max_fee_wei=options.number("OMC_NOTARY_ANCHOR_MAX_FEE_WEI", 200 * 10**9,
                                              1, 10**30),
            batch=options.number("OMC_NOTARY_BATCH", 500, 1, 100_000),
            anchor_attempts=options.number("OMC_NOTARY_ANCHOR_ATTEMPTS", 5, 1, 100),
            anchor_retry_seconds=options.number("OMC_NOTARY_ANCHOR_RETRY_SECONDS", 30, 0,
                                                86_400),
            anchor_timeout_seconds=options.number("OMC_NOTARY_ANCHOR_TIMEOUT_SECONDS", 1800,
                                                  1, 10**7),
            metrics_port=options.number("OMC_NOTARY_METRICS_PORT", 0, 0, 65535),
            metrics_host=options.text("OMC_NOTARY_METRICS_HOST", "127.0.0.1"),
            proofs_metrics_port=options.number("OMC_PROJ_PROOFS_METRICS_PORT", 0, 0, 65535),
        )
        options.check()
        return settings


def _local_registry(path: Path) -> str | None:
    try:
        return json.loads(path.read_text())["registry"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
