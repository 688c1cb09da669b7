"""The chain watcher's parts without I/O: subscriptions (parsing, event decoding, the fast
word decoder agreeing with eth_abi) and settings."""

from __future__ import annotations

import json

import eth_abi
import pytest
from eth_utils import keccak

from omc_errors import ConfigError
from omc_watcher.settings import WatcherSettings
from omc_watcher.subscriptions import SubscriptionInvalid, parse_event, parse_subscriptions

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BOB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TRANSFER = "Transfer(address indexed from, address indexed to, uint256 value)"


def topic(value: str) -> str:
    return "0x" + value.lower().removeprefix("0x").rjust(64, "0")


def transfer_log(value: int) -> tuple[list[str], str]:
    return ([parse_event(TRANSFER).topic0, topic(ALICE), topic(BOB)],
            "0x" + eth_abi.encode(["uint256"], [value]).hex())


def test_an_event_from_text_or_fragment_has_its_signature_and_topic() -> None:
    text = parse_event("event " + TRANSFER)
    fragment = parse_event({"type": "event", "name": "Transfer", "inputs": [
        {"name": "from", "type": "address", "indexed": True},
        {"name": "to", "type": "address", "indexed": True},
        {"name": "value", "type": "uint256", "indexed": False}]})
    for event in (text, fragment):
        assert event.signature == "Transfer(address,address,uint256)"
        assert event.topic0 == "0x" + keccak(text="Transfer(address,address,uint256)").hex()
        assert event.indexed == (True, True, False)


def test_a_transfer_decodes_by_name_canonically() -> None:
    topics, data = transfer_log(10**30)
    decoded = parse_event(TRANSFER).decode(topics, data)
    assert decoded == json.dumps({"from": ALICE, "to": BOB, "value": str(10**30)},
                                 sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize(("kind", "value"), [
    ("int8", -5), ("int256", -(2**255)), ("uint8", 255), ("bool", True), ("bool", False),
    ("bytes4", b"\x01\x02\x03\x04"), ("bytes32", b"\xff" * 32), ("address", BOB),
    ("uint256", 2**256 - 1)])
def test_the_word_decoder_agrees_with_eth_abi(kind: str, value) -> None:
    event = parse_event(f"E({kind} indexed a, {kind} b)")
    data = "0x" + eth_abi.encode([kind], [value]).hex()
    topics = [event.topic0, data]
    fast = event.decode(topics, data)
    general = event._decode_abi(topics, data)
    assert fast == general
    assert fast is not None


@pytest.mark.parametrize("spec", [
    "E(uint8 zeta, address indexed alpha, bool Beta, uint256 omega, int16 _x)",
    "E(uint8, bool arg0)", "E(uint8, bool)"])
def test_the_word_decoder_writes_the_canonical_json_of_the_general_path(spec: str) -> None:
    event = parse_event(spec)
    kinds = [p.type.canonical for p in event.params]
    values = {"uint8": 7, "address": BOB, "bool": True, "uint256": 2**200, "int16": -300,
              "uint16": 65535}
    words = [eth_abi.encode([k], [values[k]]).hex() for k in kinds]
    topics = [event.topic0] + ["0x" + w for w, ix in zip(words, event.indexed, strict=True)
                               if ix]
    data = "0x" + "".join(w for w, ix in zip(words, event.indexed, strict=True) if not ix)
    assert event.decode(topics, data) == event._decode_abi(topics, data)
    assert event.decode(topics, data) is not None


@pytest.mark.parametrize(("kind", "word"), [
    ("uint8", "0x" + "00" * 30 + "0100"), ("bool", "0x" + "00" * 31 + "02"),
    ("address", "0x" + "01" + "00" * 31), ("int8", "0x" + "00" * 31 + "80")])
def test_words_out_of_their_types_range_do_not_decode(kind: str, word: str) -> None:
    event = parse_event(f"E({kind} b)")
    assert event.decode([event.topic0], word) is None


def test_other_events_and_malformed_logs_are_not_decoded() -> None:
    event = parse_event(TRANSFER)
    topics, data = transfer_log(5)
    assert event.decode([topic("01"), *topics[1:]], data) is None
    assert event.decode(topics[:2], data) is None
    assert event.decode(topics, data + "00") is None


def test_dynamic_values_use_eth_abi_and_indexed_ones_are_their_hash() -> None:
    event = parse_event("Note(string indexed tag, string text, uint256[] values)")
    data = "0x" + eth_abi.encode(["string", "uint256[]"], ["héllo", [1, 2]]).hex()
    tag_hash = "0x" + keccak(text="tag").hex()
    assert json.loads(event.decode([event.topic0, tag_hash], data)) == {
        "tag": tag_hash, "text": "héllo", "values": ["1", "2"]}


def test_subscriptions_parse_with_defaults_and_filters() -> None:
    (sub,) = parse_subscriptions([{"id": "demo", "address": TOKEN.lower(),
                                   "abi_event": TRANSFER, "from_block": 7}])
    assert sub.address == TOKEN
    assert sub.topics == (parse_event(TRANSFER).topic0,)
    assert sub.filter(7, 9) == {"address": TOKEN, "fromBlock": "0x7", "toBlock": "0x9",
                                "topics": [parse_event(TRANSFER).topic0]}
    (raw,) = parse_subscriptions([{"id": "any", "address": TOKEN,
                                   "topics": [None, [topic("01"), topic("02")]]}])
    assert raw.event is None
    assert raw.decode([topic("01")], "0x") == (None, None)
    assert raw.filter(1, 1)["topics"] == [None, [topic("01"), topic("02")]]


@pytest.mark.parametrize(("items", "problem"), [
    ({}, "a JSON list"),
    ([{"address": TOKEN}], "id must be"),
    ([{"id": "a", "address": "0x12"}], "not an EVM address"),
    ([{"id": "a", "address": TOKEN, "from_block": -1}], "from_block"),
    ([{"id": "a", "address": TOKEN}, {"id": "a", "address": TOKEN}], "twice"),
    ([{"id": "a", "address": TOKEN, "topics": ["0x12"]}], "topic"),
    ([{"id": "a", "address": TOKEN, "abi_event": "Transfer(adress x)"}], "abi_event"),
])
def test_bad_subscriptions_are_refused_with_the_reason(items, problem: str) -> None:
    with pytest.raises(SubscriptionInvalid, match=problem):
        parse_subscriptions(items)


def test_settings_have_local_defaults_and_read_subscriptions_from_a_file(tmp_path) -> None:
    settings = WatcherSettings.from_env({})
    assert (settings.chain_id, settings.confirmations, settings.window) == (31337, 2, 256)
    assert settings.ws_url == "ws://127.0.0.1:18545"
    assert settings.tx_topic == "omc.tx.events.v1"
    assert settings.subscriptions == ()
    path = tmp_path / "subs.json"
    path.write_text(json.dumps([{"id": "demo", "address": TOKEN}]))
    settings = WatcherSettings.from_env({"OMC_WATCHER_SUBSCRIPTIONS": str(path),
                                         "OMC_WATCHER_WS_URL": "off",
                                         "OMC_WATCHER_RPC_URL": "https://node.example/key"})
    assert [s.id for s in settings.subscriptions] == ["demo"]
    assert settings.ws_url is None


def test_every_bad_setting_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        WatcherSettings.from_env({"OMC_WATCHER_CONFIRMATIONS": "0",
                                  "OMC_WATCHER_RPC_URL": "ftp://secret@host/key",
                                  "OMC_WATCHER_SUBSCRIPTIONS": "[{]"})
    text = str(caught.value)
    assert "OMC_WATCHER_CONFIRMATIONS" in text
    assert "OMC_WATCHER_RPC_URL" in text
    assert "OMC_WATCHER_SUBSCRIPTIONS" in text
    assert "secret" not in text


# -- the output: one encoding, the same bytes ------------------------------------------------


def test_sealing_once_gives_the_bytes_and_headers_of_the_projects_seal_and_codec() -> None:
    import dataclasses
    from datetime import UTC, datetime

    from omc_domain.chainview import Block, ChainView, Extend, Log
    from omc_events.avro import Schemas
    from omc_events.chain import seal
    from omc_events.envelope import ChainHead, headers
    from omc_watcher.output import Output

    class Producer:  # Output only reads codec.schemas here
        class codec:  # noqa: N801
            schemas = Schemas()

    output = Output(Producer(), "omc/chain-watcher")  # type: ignore[arg-type]
    view = ChainView.new(31337)
    blocks = (Block(1, "0x" + "11" * 32, "0x" + "00" * 32, 1_700_000_000, 7),)
    emits = view.advance(Extend(blocks))
    view.window.observe(blocks[0])
    emits += view.observe_logs("demo ünïcode", [Log(TOKEN, ("0x" + "ab" * 32,), "0x", 1,
                                                    "0x" + "11" * 32, "0x" + "22" * 32, 0, 3,
                                                    "T()", '{"a":"é"}')])
    emits = [dataclasses.replace(e, traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
             if i else e for i, e in enumerate(emits)]
    now = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
    head = mine = ChainHead(41, "ab" * 32)
    for emit in emits:
        expected, head = seal(Producer.codec.schemas, emit.filled(now, "svc:chain-watcher"),
                              head)
        meta, body, mine = output.seal(emit, mine, now, "svc:chain-watcher")
        assert dataclasses.replace(emit.record, meta=meta) == expected
        assert body == Producer.codec.schemas.encode(expected)
        assert mine == head
        assert output.headers(meta) == headers(meta, "omc/chain-watcher")


def _bulk_records():
    from datetime import UTC, datetime

    from omc_domain.draft import DRAFT
    from omc_events.records import BlockObserved, ContractEventObserved

    h = "0x" + "3c" * 32
    yield BlockObserved(meta=DRAFT, chain_id=1, number=0, hash=h, parent_hash=h,
                        timestamp=datetime(1970, 1, 1, tzinfo=UTC), base_fee_per_gas_wei=None)
    yield BlockObserved(meta=DRAFT, chain_id=2**40, number=21_000_000_000, hash=h,
                        parent_hash="0x" + "00" * 32,
                        timestamp=datetime(2026, 11, 25, 12, 0, 1, tzinfo=UTC),
                        base_fee_per_gas_wei=str(10**30))
    for topics, removed, signature, decoded, data in (
            ((), False, None, None, "0x"),
            ((h,), True, "T()", '{"a":"é"}', "0x" + "ff" * 300),
            (tuple("0x" + f"{i:064x}" for i in range(4)), False, "X(uint256)", "{}" * 5000,
             "0x00")):
        yield ContractEventObserved(
            meta=DRAFT, chain_id=31337, subscription_id="sub ü" * 20, address=TOKEN,
            topics=topics, data=data, block_number=8191, block_hash=h, tx_hash=h,
            transaction_index=8192, log_index=2**31 - 1, removed=removed,
            event_signature=signature, decoded_json=decoded)


@pytest.mark.parametrize("record", list(_bulk_records()), ids=lambda r: r.SCHEMA)
def test_blocks_and_logs_are_encoded_directly_to_the_codecs_bytes(record) -> None:
    import dataclasses
    from datetime import UTC, datetime

    from omc_domain.chainview import Emit
    from omc_events.avro import Schemas
    from omc_watcher.wire import Wire

    schemas = Schemas()
    for emit in (Emit("chain", "31337", "cause", 0, record),
                 Emit("receipts", "31337:" + BOB, "cause", 9000, record, "acme ü",
                      "corr", "00-" + "1" * 32 + "-" + "2" * 16 + "-01")):
        now = datetime(2026, 11, 25, 12, 0, 0, 999999, tzinfo=UTC)
        parts = Wire(schemas).parts(emit, now, "svc:chain-watcher", emit.event_id, 123_456,
                                    "ab" * 32)
        meta = emit.envelope(now, "svc:chain-watcher", sequence=123_456,
                             prev_hash="ab" * 32)
        assert parts is not None
        assert parts[0] + b"\x00" + parts[1] == schemas.encode(
            dataclasses.replace(record, meta=meta))


def test_a_bad_value_is_refused_by_the_direct_encoding_too() -> None:
    from datetime import UTC, datetime

    from omc_domain.chainview import Emit
    from omc_domain.draft import DRAFT
    from omc_events.avro import RecordInvalid, Schemas
    from omc_events.records import BlockObserved
    from omc_watcher.wire import Wire

    bad = BlockObserved(meta=DRAFT, chain_id=1, number=1, hash="0xABC",
                        parent_hash="0x" + "00" * 32, timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(RecordInvalid, match="hash"):
        Wire(Schemas()).parts(Emit("chain", "1", "c", 0, bad), datetime.now(UTC), "a",
                              "e", 1, "")
