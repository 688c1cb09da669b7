"""Verifiable audit: RFC 6962 Merkle trees over event hashes, signed checkpoints, audits."""
