"""The notary: signed Merkle checkpoints over every event stream, anchored on chain.

    consumes   the event topics (task, agent, tx, chain: every partition, from offset 0, no
               consumer group) and omc.proof.events.v1 (its own history, read first)
    produces   omc.proof.events.v1 (CheckpointSigned, AnchorSubmitted, AnchorConfirmed; key
               "<topic>:<partition>", aggregate proof_stream/<stream id>, chained per stream)
               omc.tx.events.v1 (TxRequested purpose ANCHOR, self-hashed, key
               "<chain id>:<anchoring account>") when anchoring is on
    state      one Merkle tree per topic-partition, rebuilt from the log on start; the last
               checkpoint, chain head and open anchors per stream, rebuilt from the proof topic
    guarantee  one notary per proof topic (single writer). Everything it wrote is read back
               before it writes again, and ids are derived (checkpoint: from the last covered
               event; anchor confirmation: from the TxConfirmed), so a restart continues at
               the last checkpoint: no duplicate, no gap. Every event is covered: the
               notary's own anchoring traffic by checkpoints that are signed and not
               anchored (so anchors never cause anchors; omc_notary.notary)
"""
