"""docs/events.md is generated from the schemas and the topic catalogue, and kept up to date."""

from __future__ import annotations

import json
from pathlib import Path

from omc_events.eventdoc import main, render

REPO = Path(__file__).resolve().parents[2]
AVRO = REPO / "schemas" / "avro"
TOPICS = REPO / "schemas" / "topics.yaml"
DOC = REPO / "docs" / "events.md"


def test_events_doc_is_up_to_date() -> None:
    assert DOC.read_text() == render(AVRO, TOPICS), (
        "docs/events.md is stale: run .venv/bin/python -m omc_events.eventdoc"
    )


def test_check_mode_agrees() -> None:
    assert main(["--check"]) == 0


def test_events_doc_mentions_every_record_and_topic() -> None:
    text = DOC.read_text()
    for path in AVRO.rglob("*.avsc"):
        schema = json.loads(path.read_text())
        assert f"#### {schema['namespace']}.{schema['name']}\n" in text, path.name
    for name in ("omc.commands.v1", "omc.task.events.v1", "omc.deadletter.v1"):
        assert f"### {name}\n" in text


def _write(root: Path, schema: dict) -> None:
    folder = root / "omc" / schema["namespace"].split(".")[1]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{schema['name']}.avsc").write_text(json.dumps(schema))


def test_render_shows_types_defaults_and_topics(tmp_path: Path) -> None:
    _write(tmp_path, {
        "type": "record", "name": "EventMeta", "namespace": "omc.common", "doc": "Envelope.",
        "fields": [{"name": "event_id", "type": "string", "doc": "Id."}],
    })
    _write(tmp_path, {
        "type": "enum", "name": "Kind", "namespace": "omc.x", "doc": "Kinds.",
        "symbols": ["UNKNOWN", "A"], "default": "UNKNOWN",
    })
    _write(tmp_path, {
        "type": "record", "name": "Part", "namespace": "omc.x", "doc": "A part.",
        "fields": [{"name": "kind", "type": "omc.x.Kind", "doc": "Its kind."}],
    })
    _write(tmp_path, {
        "type": "record", "name": "Happened", "namespace": "omc.x", "doc": "It happened.",
        "fields": [
            {"name": "meta", "type": "omc.common.EventMeta", "doc": "The envelope."},
            {"name": "amount_wei", "type": ["null", {"type": "string", "logicalType": "omc-wei"}],
             "default": None, "doc": "Amount | in wei, key:<id>."},
            {"name": "parts", "type": {"type": "array", "items": "omc.x.Part"}, "doc": "Parts."},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"},
             "doc": "When."},
        ],
    })
    topics = tmp_path / "topics.yaml"
    topics.write_text(
        "topics:\n"
        "  - {name: omc.x.events.v1, doc: Things., key: thing id, partitions: 2,\n"
        "     min_insync_replicas: 2, config: {cleanup.policy: delete, retention.ms: '-1'},\n"
        "     records: [omc.x.Happened], producers: [gateway], consumers: [audit]}\n"
    )
    text = render(tmp_path, topics)
    assert "| `meta` | [omc.common.EventMeta](#omccommoneventmeta) |  | The envelope. |" in text
    assert "| `amount_wei` | `string (omc-wei)?` | `null` | Amount \\| in wei, key:\\<id\\>. |" in (
        text
    )
    assert "| `parts` | array\\<[omc.x.Part](#omcxpart)\\> |  | Parts. |" in text
    assert "| `at` | `long (timestamp-micros)` |  | When. |" in text
    assert "Symbols: `UNKNOWN` (default), `A`." in text
    assert "On [omc.x.events.v1](#omcxeventsv1)." in text
    assert "Used in [omc.x.Happened](#omcxhappened)." in text
    assert "| [omc.x.events.v1](#omcxeventsv1) | thing id | 2 | forever |" in text
    assert text.index("#### omc.common.EventMeta") < text.index("#### omc.x.Happened")
    assert text.index("#### omc.x.Happened") < text.index("#### omc.x.Kind")
