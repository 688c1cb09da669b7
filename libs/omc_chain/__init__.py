"""omc_chain: the project's adapter to EVM chains (through web3.py).

    abi        signatures, selectors, calldata and return values (pure)
    actions    tool call -> typed Action, and the action hash a human approves (pure)
    reads      ChainReader: balances and contract reads at an explicit block
    artifacts  the compiled contracts (DemoToken, AnchorRegistry) and their freshness check
    deploy     sending deployments and calls; `omc chain deploy-demo`
    errors     ChainError and its children, under omc_errors.OmcError
"""
