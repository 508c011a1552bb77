"""Semantic and keyword search over the catalogue: the encoder, the persisted vector index, tagging, near-duplicates."""
