"""A fast, deterministic stand-in embedder for tests of ingest mechanics and filters (not of ranking quality)."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest


class HashingEmbedder:
    """Bag of words hashed into 256 buckets; counts how many texts it embedded."""

    name = "test-hashing"
    dimension = 256
    relevance_floor = 0.05

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-12, None)


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()
