"""What a human approves: the exact action, named by its hash, and a preview of it.

    action_hash(action) = "0x" + SHA-256 of the canonical JSON (sorted keys, no spaces,
                          UTF-8 kept) of every field of the Action, the kind by its name

An ApproveAction or RejectAction must name this hash; one naming another is refused, so an
approval can never be carried over to an action the approver did not see.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from omc_events.records import Action, ActionKind


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def action_hash(action: Action) -> str:
    """The hash an approval must name (see the module docstring)."""
    fields = {f.name: getattr(action, f.name) for f in dataclasses.fields(action)}
    fields["kind"] = ActionKind(action.kind).name
    return "0x" + hashlib.sha256(_canonical(fields).encode("utf-8")).hexdigest()


def preview_json(action: Action, max_fee_per_gas_wei: str) -> str:
    """What the approver is shown, as canonical JSON: kind, target, value, the decoded call
    and the most the transaction may pay per gas."""
    return _canonical({
        "kind": ActionKind(action.kind).name, "chain_id": action.chain_id, "to": action.to,
        "value_wei": action.value_wei, "function": action.function_signature,
        "arguments": json.loads(action.arguments_json or "{}"), "data": action.data,
        "max_fee_per_gas_wei": max_fee_per_gas_wei,
    })
