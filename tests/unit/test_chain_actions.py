"""omc_chain.actions: every tool becomes the right typed Action, anything malformed is refused,
and the action hash is stable and changes with every field."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from omc_chain import abi
from omc_chain.actions import TOOL_ARGUMENTS, action_hash, build_action
from omc_chain.errors import ActionInvalid
from omc_events.records import Action, ActionKind

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BOB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def _build(tool: str, arguments: dict, tool_call_id: str | None = "call-1") -> Action:
    return build_action("6f1c3a5e-0000-5000-8000-000000000001", 31337, tool, arguments,
                        tool_call_id)


def test_transfer_native_sends_value_with_empty_data() -> None:
    action = _build("transfer_native", {"to": ALICE.lower(), "value_wei": "1000"})

    assert action == Action(action_id="6f1c3a5e-0000-5000-8000-000000000001",
                            kind=ActionKind.NATIVE_TRANSFER, chain_id=31337, to=ALICE,
                            value_wei="1000", data="0x", function_signature=None,
                            arguments_json="{}", tool_call_id="call-1")
    action.to_avro()  # every field has its wire format


def test_erc20_transfer_calls_the_token_with_transfer_calldata() -> None:
    action = _build("erc20_transfer", {"token": TOKEN, "to": BOB, "amount": 5 * 10**18})

    assert (action.kind, action.to, action.value_wei) == (ActionKind.ERC20_TRANSFER, TOKEN, "0")
    assert action.data == abi.encode_call("transfer(address,uint256)", [BOB, 5 * 10**18])
    assert action.data.startswith(abi.ERC20_TRANSFER)
    assert action.function_signature == "transfer(address,uint256)"
    assert json.loads(action.arguments_json) == {"to": BOB, "amount": str(5 * 10**18)}
    action.to_avro()


def test_erc20_approve_names_the_spender() -> None:
    action = _build("erc20_approve", {"token": TOKEN, "spender": BOB, "amount": "7"})

    assert (action.kind, action.to, action.value_wei) == (ActionKind.ERC20_APPROVE, TOKEN, "0")
    assert action.data.startswith(abi.ERC20_APPROVE)
    assert action.function_signature == "approve(address,uint256)"
    assert action.arguments_json == f'{{"amount":"7","spender":"{BOB}"}}'


def test_erc20_balance_is_a_read_of_balance_of_with_its_output() -> None:
    action = _build("erc20_balance", {"token": TOKEN, "holder": ALICE}, None)

    assert (action.kind, action.to, action.value_wei) == (ActionKind.CONTRACT_READ, TOKEN, "0")
    assert action.function_signature == "balanceOf(address)(uint256)"
    assert action.data == abi.encode_call("balanceOf(address)", [ALICE])
    assert action.tool_call_id is None


def test_contract_write_encodes_by_signature_with_value() -> None:
    arguments = {"address": TOKEN, "signature": "mint(address to,uint256 amount)",
                 "args": {"to": ALICE, "amount": "3"}, "value_wei": 9}
    action = _build("contract_write", arguments)

    assert (action.kind, action.to, action.value_wei) == (ActionKind.CONTRACT_WRITE, TOKEN, "9")
    assert action.function_signature == "mint(address,uint256)"
    assert action.data == abi.encode_call("mint(address,uint256)", [ALICE, 3])
    assert json.loads(action.arguments_json) == {"to": ALICE, "amount": "3"}


def test_contract_write_value_defaults_to_zero_and_args_to_none() -> None:
    action = _build("contract_write", {"address": TOKEN, "signature": "pause()"})
    assert (action.value_wei, action.data, action.arguments_json) == (
        "0", abi.selector("pause()"), "{}")


@pytest.mark.parametrize(("signature", "args", "kind", "names"), [
    ("transfer(address dst,uint256 wad)", [BOB, 1], ActionKind.ERC20_TRANSFER, {"to", "amount"}),
    ("approve(address,uint256)", [BOB, 1], ActionKind.ERC20_APPROVE, {"spender", "amount"}),
])
def test_a_contract_write_of_transfer_or_approve_is_classified_as_such(
        signature, args, kind, names) -> None:
    action = _build("contract_write", {"address": TOKEN, "signature": signature, "args": args})

    assert action.kind == kind
    assert set(json.loads(action.arguments_json)) == names


def test_side_doors_stay_contract_writes_with_their_selector() -> None:
    action = _build("contract_write", {"address": TOKEN, "signature": "multicall(bytes[])",
                                       "args": [["0x01", "0x0203"]]})
    assert action.kind == ActionKind.CONTRACT_WRITE
    assert action.data[:10] == abi.MULTICALL
    assert action.data[:10] in abi.SIDE_DOOR_SELECTORS


def test_contract_read_keeps_the_outputs_in_its_signature() -> None:
    fragment = {"type": "function", "name": "rootOf", "outputs": [{"type": "bytes32"}],
                "inputs": [{"name": "streamId", "type": "bytes32"},
                           {"name": "treeSize", "type": "uint64"}]}
    action = _build("contract_read", {"address": TOKEN, "signature": fragment,
                                      "args": ["0x" + "11" * 32, 4]})

    assert action.kind == ActionKind.CONTRACT_READ
    assert action.function_signature == "rootOf(bytes32,uint64)(bytes32)"
    assert json.loads(action.arguments_json) == {"streamId": "0x" + "11" * 32, "treeSize": "4"}


def test_every_tool_that_makes_an_action_is_covered() -> None:
    assert set(TOOL_ARGUMENTS) == {"transfer_native", "erc20_transfer", "erc20_approve",
                                   "erc20_balance", "contract_write", "contract_read"}


@pytest.mark.parametrize(("tool", "arguments"), [
    ("get_balance", {"address": ALICE}),
    ("sign_typed_data", {}),
    ("transfer_native", {"to": ALICE}),
    ("transfer_native", {"to": ALICE, "value_wei": "1", "memo": "x"}),
    ("transfer_native", {"to": ALICE, "value_wei": 1.5}),
    ("transfer_native", {"to": ALICE, "value_wei": "1e18"}),
    ("transfer_native", {"to": ALICE, "value_wei": "-1"}),
    ("transfer_native", {"to": ALICE, "value_wei": True}),
    ("transfer_native", {"to": ALICE, "value_wei": str(2**256)}),
    ("transfer_native", {"to": ALICE, "value_wei": "007"}),
    ("transfer_native", {"to": "0x" + "0" * 40, "value_wei": "1"}),
    ("transfer_native", {"to": "alice.eth", "value_wei": "1"}),
    ("transfer_native", {"to": "0x70997970c51812dc3a010c7d01b50e0d17dc79C8", "value_wei": "1"}),
    ("erc20_transfer", {"token": TOKEN, "to": BOB, "amount": 1.0}),
    ("erc20_transfer", {"token": TOKEN, "to": "0x" + "0" * 40, "amount": 1}),
    ("erc20_transfer", {"token": "0x1234", "to": BOB, "amount": 1}),
    ("erc20_approve", {"token": TOKEN, "to": BOB, "amount": 1}),
    ("contract_write", {"address": TOKEN, "signature": "transfer(address,uint256)",
                        "args": [BOB, 1], "value_wei": "1"}),
    ("contract_write", {"address": TOKEN, "signature": "f(uint8)", "args": [300]}),
    ("contract_write", {"address": TOKEN, "signature": "not a signature"}),
    ("contract_read", {"address": TOKEN, "signature": "f(address)", "args": []}),
    ("contract_read", {"address": TOKEN, "signature": "f()", "value_wei": "1"}),
    ("contract_read", "not an object"),
])
def test_malformed_tool_calls_are_refused(tool, arguments) -> None:
    with pytest.raises(ActionInvalid):
        _build(tool, arguments)


@pytest.mark.parametrize(("action_id", "chain_id", "tool_call_id"), [
    ("", 1, None), (None, 1, None), ("a", 0, None), ("a", True, None), ("a", "1", None),
    ("a", 1, 5),
])
def test_bad_identifiers_are_refused(action_id, chain_id, tool_call_id) -> None:
    with pytest.raises(ActionInvalid):
        build_action(action_id, chain_id, "transfer_native", {"to": ALICE, "value_wei": 1},
                     tool_call_id)


# -- the hash a human approves -----------------------------------------------------------------

BASE = Action(action_id="a-1", kind=ActionKind.ERC20_TRANSFER, chain_id=31337, to=TOKEN,
              value_wei="0", data=abi.encode_call("transfer(address,uint256)", [BOB, 1]),
              function_signature="transfer(address,uint256)",
              arguments_json=f'{{"amount":"1","to":"{BOB}"}}', tool_call_id="call-1")


def test_action_hash_is_sha256_of_the_canonical_json_of_every_field() -> None:
    fields = {f.name: getattr(BASE, f.name) for f in dataclasses.fields(BASE)}
    fields["kind"] = "ERC20_TRANSFER"
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    assert action_hash(BASE) == "0x" + hashlib.sha256(text.encode()).hexdigest()


def test_action_hash_is_stable_across_builds_and_decoding() -> None:
    one = _build("erc20_transfer", {"token": TOKEN, "to": BOB, "amount": 1})
    two = _build("erc20_transfer", {"token": TOKEN.lower(), "to": BOB.lower(), "amount": "1"})

    assert action_hash(one) == action_hash(two)
    assert action_hash(Action.from_avro(one.to_avro())) == action_hash(one)
    assert action_hash(one) == action_hash(one)  # no hidden state


@pytest.mark.parametrize(("field", "other"), [
    ("action_id", "a-2"), ("kind", ActionKind.CONTRACT_WRITE), ("chain_id", 1),
    ("to", ALICE), ("value_wei", "1"), ("data", BASE.data[:-1] + "2"),
    ("function_signature", None), ("arguments_json", "{}"), ("tool_call_id", None),
])
def test_action_hash_changes_with_every_field(field, other) -> None:
    assert {f.name for f in dataclasses.fields(Action)} >= {field}
    assert action_hash(dataclasses.replace(BASE, **{field: other})) != action_hash(BASE)


def test_every_field_is_covered_by_the_sensitivity_test() -> None:
    covered = {"action_id", "kind", "chain_id", "to", "value_wei", "data",
               "function_signature", "arguments_json", "tool_call_id"}
    assert {f.name for f in dataclasses.fields(Action)} == covered
