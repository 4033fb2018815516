"""Test doubles that are real objects: a deterministic embedder that records its calls."""

from __future__ import annotations

import hashlib
import re
import threading

import numpy as np

DIMENSIONS = 384


class FakeEmbedder:
    """Bag-of-words vectors: each distinct word adds a fixed random direction, then the sum
    is normalized. Texts with the same words are identical (cosine 1); two texts of n words
    that share m have cosine about m/n — so tests can aim at a similarity band."""

    model_id = "fake/bag-of-words"

    def __init__(self, dimensions: int = DIMENSIONS, delay: float = 0.0):
        self.dimensions = dimensions
        self.delay = delay  # seconds per call, to widen race windows in concurrency tests
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    @property
    def texts_embedded(self) -> list[str]:
        return [text for call in self.calls for text in call]

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(list(texts))
        if self.delay:
            threading.Event().wait(self.delay)
        return np.stack([self.vector(text) for text in texts]).astype(np.float32)

    def vector(self, text: str) -> np.ndarray:
        total = np.zeros(self.dimensions)
        for word in set(re.findall(r"\w+", text.lower())) or {""}:
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
            total += np.random.default_rng(seed).standard_normal(self.dimensions)
        return (total / np.linalg.norm(total)).astype(np.float32)
