"""The proof index: a projection of the event streams' Merkle trees and the notary's
checkpoints, from which the gateway serves inclusion and consistency proofs.

    migrations (sql/)  proof_leaves, proof_nodes, proof_checkpoints, proof_offsets
    projector.py       folds the event topics and the proof topic (its offsets in the same
                       MySQL transaction as its rows, so a crash never loses or doubles one)
    queries.py         inclusion(event_id, tenant), consistency(stream, from, to)
"""
