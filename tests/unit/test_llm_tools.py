"""The tool catalogue and validate_call: what the model may call, and every way it can be wrong."""

from __future__ import annotations

import json

import pytest

from omc_llm.abi import AbiError, canonical_type, parse_function
from omc_llm.tools import (
    READ_TOOLS,
    TOOL_NAMES,
    TOOL_SCHEMAS,
    WRITE_TOOLS,
    InvalidToolCall,
    tool_schemas,
    validate_call,
)

A = "0x" + "ab" * 20
B = "0x" + "cd" * 20
A_SUM = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
B_SUM = "0xCdCDCdCdcdcdcdCdcDcDCdcDcDCdCdcdCdcDCDcD"


def call(name: str, **arguments: object) -> dict:
    return validate_call(name, json.dumps(arguments))


def test_catalogue_names_and_split() -> None:
    assert TOOL_NAMES == ("get_balance", "erc20_balance", "transfer_native", "erc20_transfer",
                          "erc20_approve", "contract_read", "contract_write")
    assert {"get_balance", "erc20_balance", "contract_read"} == READ_TOOLS
    assert {"transfer_native", "erc20_transfer", "erc20_approve",
                           "contract_write"} == WRITE_TOOLS
    for schema in TOOL_SCHEMAS:
        assert schema["type"] == "function"
        parameters = schema["function"]["parameters"]
        assert parameters["type"] == "object"
        assert parameters["additionalProperties"] is False
        assert set(parameters["required"]) <= set(parameters["properties"])
    assert [t["function"]["name"] for t in tool_schemas(["contract_read", "get_balance"])] == [
        "get_balance", "contract_read"]
    with pytest.raises(InvalidToolCall, match="unknown tool"):
        tool_schemas(["send_everything"])


def test_amounts_are_strings_in_the_schemas() -> None:
    transfer = TOOL_SCHEMAS[2]["function"]["parameters"]["properties"]["value_wei"]
    assert transfer["type"] == "string"
    assert transfer["pattern"] == "^(0|[1-9][0-9]*)$"


def test_valid_calls_come_back_normalized() -> None:
    assert call("get_balance", address=A) == {"address": A_SUM}
    assert call("erc20_balance", token=A, holder=B) == {"token": A_SUM, "holder": B_SUM}
    assert call("transfer_native", to=B_SUM, value_wei="10000000000000000") == {
        "to": B_SUM, "value_wei": "10000000000000000"}
    assert call("erc20_transfer", token=A, to=B, amount="5")["amount"] == "5"
    assert call("erc20_approve", token=A, spender=B, amount="0")["spender"] == B_SUM
    assert call("contract_read", address=A, abi="balanceOf(address)(uint256)", args=[B]) == {
        "address": A_SUM, "abi": "balanceOf(address)(uint256)", "args": [B_SUM]}
    assert call("contract_read", address=A, abi="totalSupply()(uint256)")["args"] == []
    written = call("contract_write", address=A, abi="setFlag(bool,bytes4,int8[2])",
                   args=[True, "0xDEADBEEF", ["-128", "127"]])
    assert written["args"] == [True, "0xdeadbeef", ["-128", "127"]]
    assert written["value_wei"] == "0"


def test_abi_fragment_objects_are_accepted() -> None:
    fragment = {"type": "function", "name": "allowance", "stateMutability": "view",
                "inputs": [{"name": "owner", "type": "address"},
                           {"name": "spender", "type": "address"}],
                "outputs": [{"name": "", "type": "uint256"}]}
    assert call("contract_read", address=A, abi=fragment, args=[A, B])["args"] == [A_SUM, B_SUM]
    fn = parse_function(fragment)
    assert fn.signature == "allowance(address,address)"
    assert fn.selector == "0xdd62ed3e"
    assert parse_function("transfer(address to, uint amount) returns (bool)").selector == (
        "0xa9059cbb")


@pytest.mark.parametrize(("name", "arguments", "message"), [
    ("send_everything", {"to": A}, "unknown tool"),
    ("get_balance", {"address": A, "chain": 1}, "unknown field(s) 'chain'"),
    ("erc20_transfer", {"token": A, "to": B}, "missing field(s) 'amount'"),
    ("transfer_native", {"to": A, "value_wei": 1.5}, "not an integer string"),
    ("transfer_native", {"to": A, "value_wei": 100}, "decimal integer string"),
    ("transfer_native", {"to": A, "value_wei": True}, "decimal integer string"),
    ("transfer_native", {"to": A, "value_wei": "1.5"}, "without sign, point or leading zeros"),
    ("transfer_native", {"to": A, "value_wei": "-1"}, "without sign"),
    ("transfer_native", {"to": A, "value_wei": "007"}, "leading zeros"),
    ("transfer_native", {"to": A, "value_wei": "1e18"}, "decimal integer"),
    ("transfer_native", {"to": A, "value_wei": str(2**256)}, "above 2**256-1"),
    ("get_balance", {"address": "0x1234"}, "0x + 40 hex digits"),
    ("get_balance", {"address": "vitalik.eth"}, "0x + 40 hex digits"),
    ("get_balance", {"address": A_SUM[:-1] + "b"}, "wrong EIP-55 checksum"),
    ("contract_read", {"address": A, "abi": "balanceOf(address)", "args": []},
     "takes 1 arguments, got 0"),
    ("contract_read", {"address": A, "abi": "f(uint8)", "args": ["256"]}, "out of range"),
    ("contract_read", {"address": A, "abi": "f(uint256)", "args": [5]}, "decimal string"),
    ("contract_read", {"address": A, "abi": "f((uint256,address))", "args": []}, "signature"),
    ("contract_read", {"address": A, "abi": "f(uint7)", "args": ["1"]}, "8..256"),
    ("contract_read", {"address": A, "abi": {"type": "event", "name": "E"}, "args": []},
     "not 'function'"),
    ("contract_read", {"address": A, "abi": 42}, "signature string or one ABI fragment"),
    ("contract_write", {"address": A, "abi": "f(bytes4)", "args": ["0x01"]}, "exactly 4 bytes"),
])
def test_bad_calls_are_refused_with_the_reason(name: str, arguments: dict, message: str) -> None:
    with pytest.raises(InvalidToolCall) as caught:
        validate_call(name, json.dumps(arguments))
    assert message in str(caught.value)
    assert caught.value.tool == name


def test_arguments_that_are_not_a_json_object() -> None:
    with pytest.raises(InvalidToolCall, match="not valid JSON"):
        validate_call("get_balance", '{"address": ')
    with pytest.raises(InvalidToolCall, match="must be a JSON object, got list"):
        validate_call("get_balance", "[]")
    with pytest.raises(InvalidToolCall, match="longer than"):
        validate_call("get_balance", json.dumps({"address": "x" * 20000}))
    with pytest.raises(InvalidToolCall, match="not an integer string"):
        validate_call("transfer_native", f'{{"to":"{A}","value_wei":NaN}}')


def test_canonical_types() -> None:
    assert canonical_type("uint") == "uint256"
    assert canonical_type("int[]") == "int256[]"
    assert canonical_type("bytes32[2][]") == "bytes32[2][]"
    for bad in ("uint0", "uint264", "bytes33", "bytes0", "tuple", "address[0]", "uint08"):
        with pytest.raises(AbiError):
            canonical_type(bad)
