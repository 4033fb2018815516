"""Top-k similarity search over the memories (vector now; the chat uses the same path)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import store
from .store import ScoredMemory


def search(conn: Any, query_vector: np.ndarray, *, k: int, threshold: float,
           type: str | None = None) -> list[ScoredMemory]:
    """The k nearest memories whose cosine similarity is at least `threshold`, best first."""
    return [hit for hit in store.nearest_memories(conn, query_vector, k=k, type=type)
            if hit.similarity >= threshold]
