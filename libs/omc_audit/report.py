"""A task's audit report: its causal chain, each step with its proof status.

    task_report(bundle, verification) -> dict            JSON-ready
    render_html(report) -> str                           one self-contained page (no script,
                                                         no external resource)

Built from an exported bundle (the events as stored, decoded with their writer schemas) and
the result of verifying it, so the report says exactly what was checked.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

from omc_audit.bundle import Bundle, bundle_codec
from omc_events.records import AnchorConfirmed, CheckpointSigned
from omc_proofs.audit import Report


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def task_report(bundle: Bundle, verification: Report) -> dict[str, Any]:
    codec = bundle_codec(bundle)
    findings: dict[str, list[str]] = {}
    for f in verification.findings:
        findings.setdefault(f.where, []).append(f"{f.detail} [{f.code}]")
    anchors: dict[int, dict[str, Any]] = {}
    checkpoints: dict[int, dict[str, Any]] = {}
    for m in bundle.evidence.proof_events:
        try:
            record = codec.decode(m.value)
        except Exception:  # noqa: S112 - the verification reports it
            continue
        if isinstance(record, CheckpointSigned):
            checkpoints[record.tree_size] = {"tree_size": record.tree_size, "root": record.root,
                                             "signer": record.signer}
        elif isinstance(record, AnchorConfirmed):
            anchors[record.tree_size] = {"tx_hash": record.tx_hash,
                                         "block_number": record.block_number,
                                         "chain_id": record.chain_id}
    proofs = {(p.topic, p.partition, p.offset): p for p in bundle.evidence.proofs}
    steps = []
    for m in bundle.evidence.events:
        step: dict[str, Any] = {"where": m.where}
        try:
            record = codec.decode(m.value)
            datum = record.to_avro()
            meta = datum.pop("meta")
            step.update(type=meta["event_type"].rsplit(".", 1)[-1],
                        sequence=meta["sequence"], occurred_at=_plain(meta["occurred_at"]),
                        event_id=meta["event_id"], hash=meta["hash"], fields=_plain(datum))
        except Exception as error:
            step.update(type="unreadable", fields={"error": str(error)})
        proof = proofs.get((m.topic, m.partition, m.offset))
        status = verification.status.get(m.where, "not proven")
        step["proof"] = {"status": status}
        if proof is not None:
            step["proof"].update(leaf_index=proof.leaf_index, tree_size=proof.tree_size,
                                 checkpoint=checkpoints.get(proof.tree_size),
                                 anchor=anchors.get(proof.tree_size))
        step["problems"] = findings.pop(m.where, [])
        steps.append(step)
    steps.sort(key=lambda step: str(step.get("occurred_at", "")))  # the causal order
    return {"task_id": bundle.task_id, "exported_at": bundle.exported_at,
            "verified": verification.ok, "notary": bundle.notary,
            "summary": {"events": verification.events, "checkpoints": verification.checkpoints,
                        "inferences": verification.inferences, "proofs": verification.proofs,
                        "anchors_on_chain": verification.anchors_on_chain,
                        "anchors_recorded": verification.anchors_recorded},
            "steps": steps,
            "other_problems": [p for ps in findings.values() for p in ps],
            "notes": verification.notes}


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
h1{font-size:1.4em}.ok{color:#0a6b2d}.bad{color:#a40000}
.step{border:1px solid #ccc;border-radius:6px;margin:.8em 0;padding:.6em 1em}
.step.bad{border-color:#a40000;background:#fff4f4}
code,pre{font:12px ui-monospace,monospace;word-break:break-all;white-space:pre-wrap}
table{border-collapse:collapse}td{padding:.1em .6em;vertical-align:top}
"""


def render_html(report: dict[str, Any]) -> str:
    e = html.escape
    verdict = ("<span class=ok>VERIFIED</span>" if report["verified"]
               else "<span class=bad>VERIFICATION FAILED</span>")
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>Audit of task "
             f"{e(report['task_id'])}</title><style>{_STYLE}</style></head><body>",
             f"<h1>Audit of task <code>{e(report['task_id'])}</code>: {verdict}</h1>",
             f"<p>Exported {e(report['exported_at'])}; notary "
             f"{', '.join(f'<code>{e(n)}</code>' for n in report['notary']) or 'none'}.</p>",
             "<table>" + "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>"
                                 for k, v in report["summary"].items()) + "</table>"]
    for note in report["notes"]:
        parts.append(f"<p><em>{e(note)}</em></p>")
    for problem in report["other_problems"]:
        parts.append(f"<p class=bad>{e(problem)}</p>")
    for step in report["steps"]:
        bad = " bad" if step["problems"] else ""
        proof = step["proof"]
        anchor = proof.get("anchor")
        anchor_text = (f"anchored in tx <code>{e(anchor['tx_hash'])}</code>, block "
                       f"{anchor['block_number']} (chain {anchor['chain_id']})"
                       if anchor else "checkpoint not anchored")
        parts.append(
            f"<div class='step{bad}'><b>{e(step.get('type', '?'))}</b> "
            f"#{e(str(step.get('sequence', '?')))} at {e(str(step.get('occurred_at', '?')))}"
            f" <small>({e(step['where'])})</small><br>"
            f"hash <code>{e(str(step.get('hash', '?')))}</code><br>"
            f"proof: {e(proof['status'])}"
            + (f"; leaf {proof['leaf_index']} of {proof['tree_size']}; {anchor_text}"
               if "leaf_index" in proof else "")
            + "".join(f"<div class=bad>{e(p)}</div>" for p in step["problems"])
            + f"<details><summary>fields</summary><pre>"
              f"{e(json.dumps(step.get('fields', {}), indent=1, sort_keys=True))}"
              f"</pre></details></div>")
    parts.append("</body></html>")
    return "\n".join(parts)
