"""The agent runtime's Prometheus metrics (names: omc_runtime_<thing>_<unit>)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

COMMANDS = Counter("omc_runtime_commands_total", "Commands handled, by type", ["type"])
EVENTS = Counter("omc_runtime_events_written_total", "Events written, by type", ["type"])
VERDICTS = Counter("omc_runtime_policy_verdicts_total", "Policy verdicts, by verdict",
                   ["verdict"])
TOKENS = Counter("omc_runtime_llm_tokens_total", "Model tokens, by kind", ["kind"])
COST = Counter("omc_runtime_llm_cost_usd_total", "Model cost in US dollars")
INFERENCE = Histogram("omc_runtime_inference_seconds", "Wall time of model calls",
                      buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60))
COMMAND_SECONDS = Histogram("omc_runtime_command_seconds", "Time to answer a command, by type",
                            ["type"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                               5, 10))
DEAD_LETTERS = Counter("omc_runtime_dead_letters_total", "Commands sent to the dead-letter topic")
