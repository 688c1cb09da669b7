"""omc_chain.abi: signatures, selectors, calldata, return values, canonical JSON; and the
committed contract artifacts match their sources."""

from __future__ import annotations

import json

import eth_abi
import pytest
from eth_utils import keccak

from omc_chain import abi
from omc_chain.artifacts import (
    ARTIFACTS_DIR,
    CONTRACTS,
    check_artifacts,
    load_artifact,
    pinned_solc_version,
)
from omc_chain.errors import AbiError

HOLDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.mark.parametrize(("constant", "signature"), [
    (abi.ERC20_TRANSFER, "transfer(address,uint256)"),
    (abi.ERC20_APPROVE, "approve(address,uint256)"),
    (abi.ERC20_TRANSFER_FROM, "transferFrom(address,address,uint256)"),
    (abi.ERC20_PERMIT, "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"),
    (abi.ERC20_INCREASE_ALLOWANCE, "increaseAllowance(address,uint256)"),
    (abi.SET_APPROVAL_FOR_ALL, "setApprovalForAll(address,bool)"),
    (abi.MULTICALL, "multicall(bytes[])"),
    (abi.MULTICALL_DEADLINE, "multicall(uint256,bytes[])"),
    (abi.AGGREGATE, "aggregate((address,bytes)[])"),
    (abi.AGGREGATE3, "aggregate3((address,bool,bytes)[])"),
    (abi.AGGREGATE3_VALUE, "aggregate3Value((address,bool,uint256,bytes)[])"),
])
def test_known_selectors_are_the_keccak_of_their_signatures(constant, signature) -> None:
    assert constant == "0x" + keccak(text=signature)[:4].hex()
    assert abi.selector(signature) == constant
    assert abi.KNOWN_SELECTORS[constant] == signature


def test_side_doors_are_every_known_selector_but_transfer() -> None:
    assert abi.ERC20_TRANSFER not in abi.SIDE_DOOR_SELECTORS
    assert {abi.ERC20_APPROVE, abi.ERC20_PERMIT, abi.MULTICALL, abi.AGGREGATE3_VALUE,
            abi.SET_APPROVAL_FOR_ALL} <= abi.SIDE_DOOR_SELECTORS


@pytest.mark.parametrize(("text", "canonical", "names", "outputs"), [
    ("transfer(address,uint256)", "transfer(address,uint256)", ["arg0", "arg1"], []),
    ("transfer(address to, uint256 amount)", "transfer(address,uint256)", ["to", "amount"], []),
    ("balanceOf(address)(uint256)", "balanceOf(address)", ["arg0"], ["uint256"]),
    ("function balanceOf(address owner) external view returns (uint256)",
     "balanceOf(address)", ["owner"], ["uint256"]),
    ("f(uint a, int b, bytes32[2] memory c)", "f(uint256,int256,bytes32[2])",
     ["a", "b", "c"], []),
    ("aggregate3((address target,bool allowFailure,bytes callData)[] calls)",
     "aggregate3((address,bool,bytes)[])", ["calls"], []),
    ("g(tuple(uint8,(bool,string))[2][] x)((address,bytes)[])",
     "g((uint8,(bool,string))[2][])", ["x"], ["(address,bytes)[]"]),
    ("noArgs()", "noArgs()", [], []),
])
def test_text_signatures_parse_to_canonical_form(text, canonical, names, outputs) -> None:
    fn = abi.parse_signature(text)
    assert fn.canonical == canonical
    assert fn.input_names == names
    assert fn.output_types == outputs
    assert fn.selector == "0x" + keccak(text=canonical)[:4].hex()


def test_a_json_abi_fragment_parses_like_its_text_form() -> None:
    fragment = {"type": "function", "name": "aggregate3", "stateMutability": "payable",
                "inputs": [{"name": "calls", "type": "tuple[]", "components": [
                    {"name": "target", "type": "address"},
                    {"name": "allowFailure", "type": "bool"},
                    {"name": "callData", "type": "bytes"}]}],
                "outputs": [{"name": "", "type": "uint256"}]}
    fn = abi.parse_signature(fragment)
    assert fn == abi.parse_signature(json.dumps(fragment))
    assert fn.canonical == "aggregate3((address,bool,bytes)[])"
    assert fn.selector == abi.AGGREGATE3
    assert fn.output_types == ["uint256"]


@pytest.mark.parametrize("bad", [
    "", "transfer", "transfer(address", "1transfer(address)", "transfer(adress)",
    "f(uint7)", "f(uint264)", "f(bytes33)", "f(bytes0)", "f(fixed128x18)", "f(function)",
    "f(uint256[0])", "f(uint256 a, uint256 a)", "f(uint256 two words)", "f(address)x",
    '{"type": "event", "name": "Transfer"}', "{not json",
])
def test_malformed_signatures_are_refused(bad) -> None:
    with pytest.raises(AbiError):
        abi.parse_signature(bad)


def test_encode_call_matches_eth_abi_and_decodes_back_by_name() -> None:
    data = abi.encode_call("transfer(address to,uint256 amount)", [HOLDER.lower(), "10"])

    assert data == abi.ERC20_TRANSFER + eth_abi.encode(["address", "uint256"],
                                                       [HOLDER, 10]).hex()
    assert abi.encode_call("transfer(address to,uint256 amount)",
                           {"amount": 10, "to": HOLDER}) == data
    assert abi.decode_call(data, "transfer(address to,uint256 amount)") == {
        "to": HOLDER, "amount": "10"}
    assert abi.decode_call(data, "transfer(address,uint256)") == {"arg0": HOLDER, "arg1": "10"}


def test_nested_values_encode_and_decode_canonically() -> None:
    signature = "f(int8 n,bytes b,bytes4 s,bool t,string u,(address who,uint16 x)[] items)"
    args = {"n": -5, "b": "0xDEADbeef", "s": "0x01020304", "t": True, "u": "héllo",
            "items": [{"who": HOLDER, "x": 7}, [HOLDER.lower(), "8"]]}
    decoded = abi.decode_call(abi.encode_call(signature, args), signature)
    assert decoded == {"n": "-5", "b": "0xdeadbeef", "s": "0x01020304", "t": True, "u": "héllo",
                       "items": [{"who": HOLDER, "x": "7"}, {"who": HOLDER, "x": "8"}]}


@pytest.mark.parametrize(("signature", "args"), [
    ("f(uint256)", [1.0]), ("f(uint256)", [True]), ("f(uint256)", ["1e18"]),
    ("f(uint256)", ["-1"]), ("f(uint8)", [256]), ("f(int8)", [-129]), ("f(uint256)", [2**256]),
    ("f(uint256)", ["0x10"]), ("f(address)", ["0x1234"]),
    ("f(address)", ["0x70997970c51812dc3a010c7d01b50e0d17dc79C8"]),  # bad checksum
    ("f(bool)", [1]), ("f(bytes)", ["0xabc"]), ("f(bytes32)", ["0x01"]), ("f(string)", [5]),
    ("f(uint256[2])", [[1]]), ("f(uint256[])", [5]), ("f(uint256,uint256)", [1]),
    ("f(uint256 a)", {"b": 1}), ("f(uint256 a)", {"a": 1, "b": 2}), ("f(uint256)", "1"),
    ("f((uint8 a,bool b))", [{"a": 1}]),
])
def test_bad_argument_values_are_refused(signature, args) -> None:
    with pytest.raises(AbiError):
        abi.encode_call(signature, args)


def test_decode_call_refuses_another_selector_or_truncated_data() -> None:
    data = abi.encode_call("approve(address,uint256)", [HOLDER, 1])
    with pytest.raises(AbiError, match="selector"):
        abi.decode_call(data, "transfer(address,uint256)")
    with pytest.raises(AbiError):
        abi.decode_call(data[:-2], "approve(address,uint256)")


def test_decode_result_by_types_or_by_signature_outputs() -> None:
    raw = eth_abi.encode(["uint256", "address", "bytes32", "string"],
                         [2**255, HOLDER, b"\x01" * 32, "DEMO"])
    expected = [str(2**255), HOLDER, "0x" + "01" * 32, "DEMO"]
    assert abi.decode_result(["uint256", "address", "bytes32", "string"], raw) == expected
    assert abi.decode_result("f()(uint256,address,bytes32,string)", "0x" + raw.hex()) == expected
    with pytest.raises(AbiError):
        abi.decode_result(["uint256"], b"")


def test_canonical_json_sorts_keys_without_spaces_and_refuses_floats() -> None:
    assert abi.canonical_json({"b": "1", "a": ["é", True]}) == '{"a":["é",true],"b":"1"}'
    with pytest.raises(AbiError):
        abi.canonical_json({"amount": 1.5})


def test_address_normalises_to_eip55() -> None:
    assert abi.address(HOLDER.lower()) == HOLDER
    assert abi.address(HOLDER.upper().replace("0X", "0x")) == HOLDER


# -- the committed artifacts -------------------------------------------------------------------


def test_committed_artifacts_match_their_sources_and_the_pinned_compiler() -> None:
    assert check_artifacts() == []


def test_each_artifact_has_abi_and_code_of_the_pinned_compiler() -> None:
    for name in CONTRACTS:
        artifact = load_artifact(name)
        assert artifact.solc_version.startswith(pinned_solc_version() + "+")
        assert artifact.settings["metadata"] == {"bytecodeHash": "none", "appendCBOR": False}
        assert artifact.bytecode.startswith("0x60")
        assert len(artifact.bytecode) > 100
    token = load_artifact("DemoToken")
    assert {abi.parse_signature(token.function(n)).selector
            for n in ("transfer", "approve", "transferFrom")} == {
        abi.ERC20_TRANSFER, abi.ERC20_APPROVE, abi.ERC20_TRANSFER_FROM}
    anchor = abi.parse_signature(load_artifact("AnchorRegistry").function("anchor"))
    assert anchor.canonical == "anchor(bytes32,uint64,bytes32)"


def test_a_changed_source_makes_the_check_fail(tmp_path) -> None:
    for name in CONTRACTS:
        document = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        if name == "DemoToken":
            document["source_sha256"] = "0" * 64
        (tmp_path / f"{name}.json").write_text(json.dumps(document))

    problems = check_artifacts(tmp_path)

    assert len(problems) == 1
    assert "DemoToken" in problems[0]
    assert "changed since the artifact was built" in problems[0]


def test_an_artifact_of_another_compiler_makes_the_check_fail(tmp_path) -> None:
    for name in CONTRACTS:
        document = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        document["solc_version"] = "0.8.19+commit.7dd6d404.Emscripten.clang"
        (tmp_path / f"{name}.json").write_text(json.dumps(document))

    assert [p.split(":")[0] for p in check_artifacts(tmp_path)] == sorted(CONTRACTS)
