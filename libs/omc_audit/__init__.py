"""The audit's adapters: reading the log (Kafka, the registry), the chain's anchors, bundles.
The checks themselves are pure, in omc_proofs.audit."""
