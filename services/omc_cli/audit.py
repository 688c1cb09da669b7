"""`omc audit …`: verify the log, export a task's bundle, verify a bundle offline, report.

    omc audit verify --all | --task ID | --bundle FILE
                     [--notary ADDRESS ...] [--registry ADDRESS] [--offline] [--json]
                     [--workers N]
        reads the log (never a projection) or a bundle; recomputes every hash and chain
        link, sequence, inference signature, checkpoint signature, Merkle root, consistency
        and inclusion proof, and asks the chain for every anchored root. Prints each
        failing event and what failed; exit 1 on any failure.
    omc audit export TASK [-o FILE]         a portable bundle (default audit-<task>.json)
    omc audit export --range TOPIC:PARTITION[:FROM-TO] ... [--since T] [--until T]
                     [--proof-topic TOPIC] [-o FILE]
                                            a bundle of ranges of the log (offsets
                                            inclusive; --since/--until narrow each range to
                                            the events of that time, ISO 8601; without
                                            --range: every partition of every event topic)
    omc audit report TASK [--format json|html] [-o FILE]

Trusted notaries: --notary, else the local notary's address (<stack dir>/notary/
notary.address), else any signer (said so). The registry: --registry, else the local
stack's (<stack dir>/chain/demo.json), else the address the anchors name.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from omc_audit.bundle import Bundle
from omc_audit.onchain import ChainRoots
from omc_audit.ranges import parse_range, parse_time
from omc_audit.report import render_html, task_report
from omc_audit.verify import Topics, export_range, export_task, verify_bundle, verify_log
from omc_cli.friendly import friendly
from omc_config import Settings
from omc_proofs.audit import Report


def trusted_notaries(settings: Settings, given: tuple[str, ...]) -> tuple[str, ...]:
    if given:
        return given
    try:
        return (( settings.stack.dir / "notary" / "notary.address").read_text().strip(),)
    except OSError:
        return ()


def anchor_registry(settings: Settings, given: str | None) -> str | None:
    if given:
        return given
    try:
        return json.loads((settings.stack.dir / "chain" / "demo.json").read_text())["registry"]
    except (OSError, ValueError, KeyError):
        return None


def _print(report: Report, trusted: tuple[str, ...], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({
            "ok": report.ok, "events": report.events, "proof_events": report.proof_events,
            "checkpoints": report.checkpoints, "inferences": report.inferences,
            "inclusion_proofs": report.proofs, "anchors_on_chain": report.anchors_on_chain,
            "anchors_recorded": report.anchors_recorded, "trusted_notaries": list(trusted),
            "findings": [{"code": f.code, "where": f.where, "detail": f.detail}
                         for f in report.findings],
            "notes": report.notes}, indent=2))
        return
    click.echo(f"checked {report.events} events, {report.proof_events} proof records, "
               f"{report.checkpoints} checkpoints, {report.inferences} inference signatures, "
               f"{report.proofs} inclusion proofs, {report.anchors_on_chain} anchors on chain"
               + (f", {report.anchors_recorded} anchors from recorded receipts"
                  if report.anchors_recorded else ""))
    if not trusted:
        click.echo("note: no trusted notary given (--notary): checkpoints by any signer "
                   "were accepted")
    for note in report.notes:
        click.echo(f"note: {note}")
    for finding in report.findings:
        click.secho(f"FAIL {finding}", fg="red")
    if report.ok:
        click.secho("OK: the log verifies", fg="green")
    else:
        click.secho(f"FAILED: {len(report.findings)} problem(s)", fg="red")


@click.group()
def audit() -> None:
    """Verify the tamper-evident log, export and check audit bundles, report on a task."""


@audit.command("verify")
@click.option("--all", "everything", is_flag=True, help="Every topic and partition.")
@click.option("--task", "task_id", default=None, help="One task (its stream only).")
@click.option("--bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="An exported bundle, checked offline.")
@click.option("--notary", multiple=True, help="A trusted notary address (repeatable).")
@click.option("--registry", default=None, help="The AnchorRegistry address to trust.")
@click.option("--offline", is_flag=True, help="With --bundle: do not ask the chain.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Processes checking the log's partitions in parallel (--all, --task).")
@friendly
def verify(everything: bool, task_id: str | None, bundle: Path | None,
           notary: tuple[str, ...], registry: str | None, offline: bool,
           as_json: bool, workers: int) -> None:
    """Verify the log (--all, --task ID) or a bundle (--bundle FILE); exit 1 on a failure."""
    if sum((everything, task_id is not None, bundle is not None)) != 1:
        raise click.UsageError("give exactly one of --all, --task ID, --bundle FILE")
    settings = Settings.from_env()
    trusted = trusted_notaries(settings, notary)
    pinned = anchor_registry(settings, registry)
    if bundle is not None:
        loaded = Bundle.load(bundle)
        chain = None if offline else ChainRoots(settings.chain_rpc_url)
        report = verify_bundle(loaded, chain=chain, trusted=trusted, registry=pinned)
    else:
        report = verify_log(settings, task_id=task_id, trusted=trusted, registry=pinned,
                            workers=workers)
    _print(report, trusted, as_json)
    if not report.ok:
        sys.exit(1)


@audit.command("export")
@click.argument("task_id", required=False)
@click.option("--range", "ranges", multiple=True, metavar="TOPIC:PARTITION[:FROM-TO]",
              help="A range of the log, offsets inclusive (repeatable).")
@click.option("--since", default=None, help="Only events at or after this time (ISO 8601).")
@click.option("--until", default=None, help="Only events before this time (ISO 8601).")
@click.option("--proof-topic", default=Topics().proof, show_default=True,
              help="Where the notary's checkpoints are.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--registry", default=None, help="The AnchorRegistry address to trust.")
@friendly
def export(task_id: str | None, ranges: tuple[str, ...], since: str | None,
           until: str | None, proof_topic: str, output: Path | None,
           registry: str | None) -> None:
    """Write TASK's portable audit bundle (events as stored, schemas, proofs, anchors), or
    one of ranges of the log (--range, --since, --until)."""
    by_range = bool(ranges or since or until)
    if (task_id is None) != by_range:
        raise click.UsageError("give a TASK, or --range/--since/--until (not both)")
    settings = Settings.from_env()
    pinned = anchor_registry(settings, registry)
    if task_id is not None:
        bundle = export_task(settings, task_id, registry=pinned)
        path = output or Path(f"audit-{task_id}.json")
    else:
        bundle = export_range(settings, [parse_range(r) for r in ranges],
                              Topics(proof=proof_topic),
                              since=parse_time(since) if since else None,
                              until=parse_time(until) if until else None, registry=pinned)
        path = output or Path("audit-range.json")
    bundle.save(path)
    e = bundle.evidence
    click.echo(f"{path}: {len(e.events)} events, {len(e.proofs)} inclusion proofs, "
               f"{len(e.proof_events)} proof records, {len(e.receipts)} anchor receipts")
    for claim in e.ranges:
        click.echo(f"  {claim.stream_id} offsets {claim.first_offset}..{claim.last_offset} "
                   f"(leaves {claim.first_leaf}..{claim.last_leaf})")
    if by_range and len(e.ranges) < max(len(ranges), 1):
        click.echo("note: a range with no event checkpointed yet (or none in the time "
                   "window) is not in the bundle; the notary checkpoints new events soon")
    if len(e.proofs) < len(e.events):
        click.echo(f"note: {len(e.events) - len(e.proofs)} event(s) not yet covered by a "
                   "checkpoint; export again after the notary's next one")


@audit.command("report")
@click.argument("task_id")
@click.option("--format", "fmt", type=click.Choice(["json", "html"]), default="json",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--notary", multiple=True, help="A trusted notary address (repeatable).")
@click.option("--registry", default=None)
@friendly
def report(task_id: str, fmt: str, output: Path | None, notary: tuple[str, ...],
           registry: str | None) -> None:
    """TASK's causal chain, each event with its proof status (JSON, or one HTML page)."""
    settings = Settings.from_env()
    pinned = anchor_registry(settings, registry)
    bundle = export_task(settings, task_id, registry=pinned)
    checked = verify_bundle(bundle, chain=ChainRoots(settings.chain_rpc_url),
                            trusted=trusted_notaries(settings, notary), registry=pinned)
    built = task_report(bundle, checked)
    text = render_html(built) if fmt == "html" else json.dumps(built, indent=2)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text)
        click.echo(f"{output}: {'verified' if checked.ok else 'VERIFICATION FAILED'}")


COMMANDS = (audit,)
