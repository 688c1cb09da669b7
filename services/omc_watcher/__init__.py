"""The chain watcher: inclusion, confirmations, reorgs and contract events of one chain.

    consumes   omc.tx.events.v1 (OMC_WATCHER_TX_TOPIC), every partition from offset 0, no
               group: TxSigned and TxReplaced of this chain (the hashes to follow, with their
               request_id), the tx manager's TxFailed (stop following), and its own receipts
               events (to rebuild them); omc.chain.events.v1 (OMC_WATCHER_CHAIN_TOPIC) once,
               at start: its own chain aggregate
    produces   omc.tx.events.v1, aggregate "receipts", id and key "<chain_id>:<sender>" (the
               account's partition, a hash chain of its own): TxIncluded (receipt) ->
               TxConfirmed at OMC_WATCHER_CONFIRMATIONS, or TxFailed REVERTED (status 0, at
               the same depth); TxReorged when the block left the canonical chain, then
               TxIncluded again. Every one carries the request_id of the TxSigned whose hash
               was mined (with replacements, whichever one was).
               omc.chain.events.v1, aggregate "chain", id and key "<chain_id>": BlockObserved
               per canonical block, ReorgDetected (common ancestor, removed blocks), and
               ContractEventObserved per subscribed log (removed = true again for the logs
               of removed blocks)
    key        as above; tenant of receipts events: the TxSigned's; of chain events: "system"
    guarantee  one writer per chain (run ONE process per chain id: two would fork the hash
               chains); ids derived from the causing event or chain object
               (derived_id(TxSigned event id | block | log, position)) so a restart writes the
               same ids; a write is acknowledged (acks=all) before the state moves on; events
               are never deleted, only compensated (TxReorged, ReorgDetected, removed = true)
    state      rebuilt from the log at start: the last `OMC_WATCHER_WINDOW` canonical blocks,
               both aggregates' heads, the open requests, per subscription the last log
               reported (its checkpoint). Nothing else is stored.

`python -m omc_watcher` runs it (see `omc_watcher.settings` for the environment);
docs/chain-watcher.md is the operator's page. The pure parts are `omc_domain.chainview`.
"""
