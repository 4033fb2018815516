"""Top-k similarity search over the memories: the one search path (memory search, duplicate
and contradiction findings, chat)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import store
from .store import ScoredMemory
from .vector_index import VectorIndex


def search(conn: Any, query_vector: np.ndarray, *, k: int, threshold: float,
           type: str | None = None, index: VectorIndex | None = None) -> list[ScoredMemory]:
    """The k nearest memories whose cosine similarity is at least `threshold`, best first.

    With an `index`, the in-process vector index answers (it first applies every committed
    change); without one, or while it is still loading, sqlite-vec's KNN does."""
    found = index.search(query_vector, k=k, type=type) if index is not None else None
    if found is None:
        return [hit for hit in store.nearest_memories(conn, query_vector, k=k, type=type)
                if hit.similarity >= threshold]
    found = [(memory_id, similarity) for memory_id, similarity in found
             if similarity >= threshold]
    # Rows come from the caller's connection: a memory deleted since the index last looked
    # is absent there, and so never returned.
    memories = store.memories_by_id(conn, [memory_id for memory_id, _ in found])
    return [ScoredMemory(memories[memory_id], similarity)
            for memory_id, similarity in found if memory_id in memories]
