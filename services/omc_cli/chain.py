"""`omc chain …`: the project's contracts on the local chain.

    omc chain build [--check]      compile deploy/contracts/src with the pinned solc into
                                   libs/omc_chain/artifacts; --check only verifies that the
                                   committed artifacts match their sources (exit 1 if not)
    omc chain deploy-demo [--mint-to ADDRESS] [--amount TOKENS]
                                   deploy (or reuse) DemoToken and AnchorRegistry on the local
                                   chain (id 31337 only), mint, write .stack/chain/demo.json
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import click
from web3 import Web3

from omc_chain import abi
from omc_chain.artifacts import build_artifacts, check_artifacts
from omc_chain.deploy import deploy_demo
from omc_chain.errors import ArtifactsStale
from omc_cli.friendly import friendly
from omc_config import Settings
from omc_errors import OmcError

TOKEN_DECIMALS = 18


@click.group()
def chain() -> None:
    """The project's contracts: build them, deploy the demo ones to the local chain."""


@chain.command("build")
@click.option("--check", is_flag=True,
              help="Only verify the committed artifacts against the sources (no compiler).")
@friendly
def build(check: bool) -> None:
    """Compile the contracts with the pinned solc into committed JSON artifacts."""
    if not check:
        build_artifacts(report=lambda line: click.echo(f"  {line}"))
    problems = check_artifacts()
    if problems:
        raise ArtifactsStale("stale contract artifacts (run `omc chain build`):\n"
                             + "\n".join(f"  - {p}" for p in problems))
    click.echo("contract artifacts match their sources and the pinned solc")


@chain.command("deploy-demo")
@click.option("--mint-to", default=None, help="Address to receive newly minted DEMO tokens.")
@click.option("--amount", default="1000000", show_default=True,
              help="How many whole DEMO tokens to mint (decimals allowed, e.g. 12.5).")
@friendly
def deploy_demo_command(mint_to: str | None, amount: str) -> None:
    """Deploy DemoToken and AnchorRegistry to the local chain (reused when still there)."""
    settings = Settings.from_env()
    units = _base_units(amount)
    recipient = abi.address(mint_to, "--mint-to") if mint_to else None
    web3 = Web3(Web3.HTTPProvider(settings.chain_rpc_url, request_kwargs={"timeout": 10}))
    state = settings.stack.dir / "chain" / "demo.json"
    deployment = deploy_demo(web3, state, mint_to=recipient, mint_amount=units)
    click.echo(f"chain {deployment.chain_id} at {settings.chain_rpc_url} "
               f"({'reused' if deployment.reused else 'deployed'}; recorded in {state})")
    click.echo(f"DemoToken       {deployment.token}")
    click.echo(f"AnchorRegistry  {deployment.registry}")
    click.echo(f"deployer        {deployment.deployer}")
    if recipient:
        click.echo(f"minted {amount} DEMO ({units} base units) to {recipient}")


def _base_units(amount: str) -> int:
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise OmcError(f"--amount {amount!r} is not a number of tokens") from None
    units = value.scaleb(TOKEN_DECIMALS)
    if not value.is_finite() or value < 0 or units != units.to_integral_value():
        raise OmcError(f"--amount {amount!r} must be a non-negative number of tokens with at "
                       f"most {TOKEN_DECIMALS} decimals")
    return int(units)


COMMANDS = (chain,)
