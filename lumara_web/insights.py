"""What a new or edited memory says about the existing ones: duplicates and possible
contradictions, by cosine similarity bands (thresholds are settings). The model-based
judge that tells a reworded duplicate from a contradiction comes with the chat engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import retrieval
from .store import ScoredMemory


@dataclass(frozen=True)
class Findings:
    duplicates: list[ScoredMemory] = field(default_factory=list)
    contradiction_candidates: list[ScoredMemory] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"duplicates": [hit.to_dict() for hit in self.duplicates],
                "contradiction_candidates": [hit.to_dict()
                                             for hit in self.contradiction_candidates]}


def find_related(conn: Any, vector: np.ndarray, *, duplicate_threshold: float,
                 contradiction_threshold: float, limit: int,
                 exclude_id: int | None = None) -> Findings:
    """Memories at or above `duplicate_threshold` are duplicates; those in
    [contradiction_threshold, duplicate_threshold) are contradiction candidates."""
    # Ask for both bands' worth, plus one in case the excluded memory is among them.
    hits = retrieval.search(conn, vector, k=2 * limit + 1, threshold=contradiction_threshold)
    hits = [hit for hit in hits if hit.memory.id != exclude_id]
    duplicates = [hit for hit in hits if hit.similarity >= duplicate_threshold]
    candidates = [hit for hit in hits if hit.similarity < duplicate_threshold]
    return Findings(duplicates[:limit], candidates[:limit])
