"""The project's contracts on the real anvil: DemoToken behaves as an ERC-20 minted by its
deployer, AnchorRegistry stores a root once per (stream, size), deploy-demo is idempotent."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from web3 import Web3

from omc_chain import abi
from omc_chain.artifacts import load_artifact
from omc_chain.deploy import (
    DEMO_TOKEN_NAME,
    DEMO_TOKEN_SYMBOL,
    deploy_contract,
    deploy_demo,
    local_deployer,
    send_call,
)
from omc_chain.errors import DeployFailed

pytestmark = pytest.mark.integration

TRANSFER_TOPIC = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex()
ANCHORED_TOPIC = "0x" + Web3.keccak(text="Anchored(bytes32,uint64,bytes32,address)").hex()


def _call(web3: Web3, to: str, signature: str, *args):
    data = abi.encode_call(signature, list(args))
    return abi.decode_result(signature, bytes(web3.eth.call({"to": to, "data": data})))


def test_demo_token_is_an_erc20_minted_only_by_its_deployer(web3: Web3, funded_account) -> None:
    minter, stranger = funded_account, Account.create()
    alice = stranger.address
    token = deploy_contract(web3, minter, load_artifact("DemoToken"), "Test Token", "TT")

    assert _call(web3, token, "decimals()(uint8)") == ["18"]
    assert _call(web3, token, "symbol()(string)") == ["TT"]
    assert _call(web3, token, "minter()(address)") == [minter.address]

    receipt = send_call(web3, minter, token, abi.encode_call("mint(address,uint256)", [alice, 50]))
    (log,) = receipt["logs"]
    assert "0x" + log["topics"][0].hex() == TRANSFER_TOPIC
    assert _call(web3, token, "balanceOf(address)(uint256)", alice) == ["50"]
    assert _call(web3, token, "totalSupply()(uint256)") == ["50"]

    web3.provider.make_request("anvil_setBalance", [alice, hex(10**18)])
    with pytest.raises(DeployFailed, match="not the minter"):
        send_call(web3, stranger, token, abi.encode_call("mint(address,uint256)", [alice, 1]))
    assert _call(web3, token, "totalSupply()(uint256)") == ["50"]


def test_demo_token_transfer_approve_and_transfer_from(web3: Web3, funded_account) -> None:
    owner = funded_account
    spender = Account.create()
    web3.provider.make_request("anvil_setBalance", [spender.address, hex(10**18)])
    bob = Account.create().address
    token = deploy_contract(web3, owner, load_artifact("DemoToken"), "Test Token", "TT")
    send_call(web3, owner, token, abi.encode_call("mint(address,uint256)", [owner.address, 100]))

    send_call(web3, owner, token, abi.encode_call("transfer(address,uint256)", [bob, 30]))
    send_call(web3, owner, token, abi.encode_call("approve(address,uint256)",
                                                  [spender.address, 20]))
    send_call(web3, spender, token, abi.encode_call("transferFrom(address,address,uint256)",
                                                    [owner.address, bob, 15]))

    assert _call(web3, token, "balanceOf(address)(uint256)", bob) == ["45"]
    assert _call(web3, token, "balanceOf(address)(uint256)", owner.address) == ["55"]
    assert _call(web3, token, "allowance(address,address)(uint256)",
                 owner.address, spender.address) == ["5"]
    with pytest.raises(DeployFailed, match="insufficient allowance"):
        send_call(web3, spender, token, abi.encode_call(
            "transferFrom(address,address,uint256)", [owner.address, bob, 6]))
    with pytest.raises(DeployFailed, match="exceeds balance"):
        send_call(web3, owner, token, abi.encode_call("transfer(address,uint256)", [bob, 56]))


def test_anchor_registry_stores_a_root_once_per_stream_and_size(web3: Web3,
                                                                funded_account) -> None:
    registry = deploy_contract(web3, funded_account, load_artifact("AnchorRegistry"))
    stream, root, other = "0x" + "aa" * 32, "0x" + "11" * 32, "0x" + "22" * 32
    anchor = "anchor(bytes32,uint64,bytes32)"

    assert _call(web3, registry, "rootOf(bytes32,uint64)(bytes32)", stream, 8) == [
        "0x" + "00" * 32]
    receipt = send_call(web3, funded_account, registry, abi.encode_call(anchor, [stream, 8, root]))

    (log,) = receipt["logs"]
    assert ["0x" + t.hex() for t in log["topics"]] == [
        ANCHORED_TOPIC, stream, "0x" + "00" * 12 + funded_account.address[2:].lower()]
    assert abi.decode_result(["uint64", "bytes32"], bytes(log["data"])) == ["8", root]
    assert _call(web3, registry, "rootOf(bytes32,uint64)(bytes32)", stream, 8) == [root]

    with pytest.raises(DeployFailed, match="already anchored"):
        send_call(web3, funded_account, registry, abi.encode_call(anchor, [stream, 8, other]))
    assert _call(web3, registry, "rootOf(bytes32,uint64)(bytes32)", stream, 8) == [root]

    send_call(web3, funded_account, registry, abi.encode_call(anchor, [stream, 9, other]))
    assert _call(web3, registry, "rootOf(bytes32,uint64)(bytes32)", stream, 9) == [other]
    with pytest.raises(DeployFailed, match="zero root"):
        send_call(web3, funded_account, registry,
                  abi.encode_call(anchor, [stream, 10, "0x" + "00" * 32]))


def test_deploy_demo_records_then_reuses_then_redeploys_when_code_is_gone(
        web3: Web3, funded_account, tmp_path) -> None:
    state = tmp_path / "chain" / "demo.json"
    holder = Account.create().address

    first = deploy_demo(web3, state, mint_to=holder, mint_amount=7, deployer=funded_account)
    again = deploy_demo(web3, state, deployer=funded_account)

    assert not first.reused
    assert again.reused
    assert (again.token, again.registry) == (first.token, first.registry)
    recorded = json.loads(state.read_text())
    assert recorded["token"] == first.token
    assert recorded["registry"] == first.registry
    assert _call(web3, first.token, "balanceOf(address)(uint256)", holder) == ["7"]
    assert _call(web3, first.token, "name()(string)") == [DEMO_TOKEN_NAME]
    assert _call(web3, first.token, "symbol()(string)") == [DEMO_TOKEN_SYMBOL]

    recorded["token"] = Account.create().address  # as after a chain reset: no code there
    state.write_text(json.dumps(recorded))
    third = deploy_demo(web3, state, deployer=funded_account)

    assert not third.reused
    assert third.token not in (first.token, recorded["token"])
    assert json.loads(state.read_text())["token"] == third.token


def test_the_public_dev_key_is_refused_off_the_local_chain() -> None:
    assert local_deployer(31337).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    for chain_id in (1, 11155111, 8453):
        with pytest.raises(DeployFailed, match="only used on the local chain"):
            local_deployer(chain_id)
