"""Deploying the project's contracts and sending plain calls, signed locally (eth-account).

    deploy_contract(web3, account, artifact, *constructor_args) -> address (EIP-55)
    send_call(web3, account, to, data, value_wei=0) -> receipt (status 1; else DeployFailed)
    deploy_demo(web3, state_path, mint_to=None, mint_amount=0, deployer=None) -> DemoDeployment

`deploy_demo` is what `omc chain deploy-demo` runs: DemoToken ("OMC Demo Token", "DEMO") and
AnchorRegistry, addresses written to `state_path` (.stack/chain/demo.json). Re-running reuses
the recorded contracts when the code at their addresses is still the code deployed (same chain
id and code hash), and deploys again when the chain was reset. Minting happens on every run that
asks for it. Without an explicit deployer it signs with anvil's first development account, whose
key is public: that is allowed only on the local chain (chain id 31337) and refused anywhere
else. Transactions are EIP-1559, gas estimated with "from", fees from the latest base fee.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import eth_abi
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import Web3Exception

from omc_chain import abi
from omc_chain.artifacts import Artifact, load_artifact
from omc_chain.errors import ChainUnavailable, DeployFailed

LOCAL_CHAIN_ID = 31337
# Anvil's (and Hardhat's) first development account. Its key is published in every Foundry
# and Hardhat manual: it guards nothing and is used ONLY when the chain id is 31337 (the
# local anvil of `omc stack`); `local_deployer` refuses it on any other chain.
_ANVIL_DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEMO_TOKEN_NAME, DEMO_TOKEN_SYMBOL = "OMC Demo Token", "DEMO"
RECEIPT_TIMEOUT = 30.0


@dataclass(frozen=True)
class DemoDeployment:
    """Where the demo contracts live on one chain (the content of demo.json)."""

    chain_id: int
    deployer: str
    token: str
    registry: str
    token_code_hash: str
    registry_code_hash: str
    reused: bool = False


def local_deployer(chain_id: int) -> LocalAccount:
    """Anvil's first development account; refused unless `chain_id` is the local 31337."""
    if chain_id != LOCAL_CHAIN_ID:
        raise DeployFailed(f"the public anvil development key is only used on the local chain "
                           f"(id {LOCAL_CHAIN_ID}); this chain has id {chain_id}. "
                           f"Deploy there with a deployer of your own.")
    return Account.from_key(_ANVIL_DEV_KEY_0)


def deploy_contract(web3: Web3, account: LocalAccount, artifact: Artifact,
                    *constructor_args: Any) -> str:
    """Deploy `artifact` with `constructor_args` from `account`; its address, EIP-55."""
    types = artifact.constructor_types()
    if len(types) != len(constructor_args):
        raise DeployFailed(f"{artifact.contract}'s constructor takes {len(types)} arguments")
    data = artifact.bytecode + eth_abi.encode(types, list(constructor_args)).hex()
    receipt = _send(web3, account, {"data": data, "value": 0}, artifact.contract)
    return to_checksum_address(receipt["contractAddress"])


def send_call(web3: Web3, account: LocalAccount, to: str, data: str,
              value_wei: int = 0) -> Mapping[str, Any]:
    """Send a call and wait for its receipt; `DeployFailed` when it reverts."""
    return _send(web3, account, {"to": abi.address(to, "to"), "data": data, "value": value_wei},
                 f"call {data[:10]} to {to}")


def _send(web3: Web3, account: LocalAccount, fields: dict[str, Any],
          what: str) -> Mapping[str, Any]:
    try:
        chain_id = web3.eth.chain_id
        nonce = web3.eth.get_transaction_count(account.address, "pending")
        base_fee = web3.eth.get_block("latest")["baseFeePerGas"]
        gas = web3.eth.estimate_gas({"from": account.address, **fields})
        priority = 10**9
        transaction = {"type": 2, "chainId": chain_id, "nonce": nonce, "gas": gas * 6 // 5,
                       "maxPriorityFeePerGas": priority,
                       "maxFeePerGas": 2 * base_fee + priority, **fields}
        signed = account.sign_transaction(transaction)
        sent = web3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = web3.eth.wait_for_transaction_receipt(sent, timeout=RECEIPT_TIMEOUT,
                                                        poll_latency=0.05)
    except Web3Exception as error:
        raise DeployFailed(f"{what} from {account.address} failed: {error}") from None
    except OSError as error:
        raise ChainUnavailable(f"the chain node failed during {what} "
                               f"({type(error).__name__})") from None
    if receipt["status"] != 1:
        raise DeployFailed(f"{what} reverted in transaction {receipt['transactionHash'].hex()}")
    return receipt


def code_hash(web3: Web3, address: str) -> str:
    """keccak of the code at `address` ("0x" + 64 hex); the hash of b"" when there is none."""
    return "0x" + keccak(bytes(web3.eth.get_code(to_checksum_address(address)))).hex()


_EMPTY_CODE_HASH = "0x" + keccak(b"").hex()


def deploy_demo(web3: Web3, state_path: Path, mint_to: str | None = None,
                mint_amount: int = 0, deployer: LocalAccount | None = None) -> DemoDeployment:
    """Deploy (or reuse) DemoToken and AnchorRegistry, mint, and record them at `state_path`."""
    try:
        chain_id = web3.eth.chain_id
    except (Web3Exception, OSError) as error:
        raise ChainUnavailable(f"the chain node does not answer ({type(error).__name__}); "
                               f"is the local chain up (`omc stack up anvil`)?") from None
    account = deployer or local_deployer(chain_id)
    deployment = _recorded(web3, state_path, chain_id)
    if deployment is None:
        token = deploy_contract(web3, account, load_artifact("DemoToken"),
                                DEMO_TOKEN_NAME, DEMO_TOKEN_SYMBOL)
        registry = deploy_contract(web3, account, load_artifact("AnchorRegistry"))
        deployment = DemoDeployment(chain_id, account.address, token, registry,
                                    code_hash(web3, token), code_hash(web3, registry))
        state_path.parent.mkdir(parents=True, exist_ok=True)
        record = {k: v for k, v in asdict(deployment).items() if k != "reused"}
        state_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    if mint_to is not None and mint_amount > 0:
        if deployment.deployer != account.address:
            raise DeployFailed(f"only the deployer {deployment.deployer} may mint DemoToken")
        data = abi.encode_call("mint(address,uint256)", [mint_to, mint_amount])
        send_call(web3, account, deployment.token, data)
    return deployment


def _recorded(web3: Web3, state_path: Path, chain_id: int) -> DemoDeployment | None:
    """The recorded deployment when its code is still on this chain; None to deploy anew."""
    try:
        record = json.loads(state_path.read_text())
        deployment = DemoDeployment(**record, reused=True)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if deployment.chain_id != chain_id:
        return None
    for address, expected in ((deployment.token, deployment.token_code_hash),
                              (deployment.registry, deployment.registry_code_hash)):
        try:
            found = code_hash(web3, address)
        except (Web3Exception, OSError) as error:
            raise ChainUnavailable(f"the chain node does not answer ({type(error).__name__}); "
                                   f"is the local chain up (`omc stack up anvil`)?") from None
        if found == _EMPTY_CODE_HASH or found != expected:
            return None
    return deployment
