"""omc_txmanager: the transaction manager (keys, nonces, fees, sign-before-broadcast,
replacement, failover). `python -m omc_txmanager` runs it.

    consumes   omc.tx.events.v1: TxRequested (self-hashed, key "<chain_id>:<sender>"; the same
               request may come more than once), the tx manager's own events and the chain
               watcher's TxIncluded, TxConfirmed, TxReorged, TxFailed(REVERTED) (aggregate
               "receipts")
    produces   omc.tx.events.v1, aggregate ("account", "<chain_id>:<sender>"), chained:
               TxSigned (recorded and acknowledged BEFORE broadcast), TxBroadcast,
               TxReplaced, TxFailed (failures before inclusion); omc.deadletter.v1
    group      omc.txmanager; key "<chain_id>:<sender>", so one instance owns an account
    guarantee  each request_id yields at most one transaction per nonce and is answered by
               the watcher's TxConfirmed or a TxFailed; after a crash the same signed bytes
               are rebroadcast (same hash); input offsets committed after outputs are acked
    state      rebuilt from the log on every start (partitions read from offset 0 before
               acting), reconciled with the chain's nonces; nothing else is persisted

    settings   omc_txmanager.settings (OMC_TXMANAGER_*), keys omc_chain.signer
    manager    TxManager: the loop, the error table
    rpc        JSON-RPC with failover and typed node errors
    fees       market EIP-1559 fees from eth_feeHistory
    app        build(settings, ...) -> TxManager: the composition root
"""
