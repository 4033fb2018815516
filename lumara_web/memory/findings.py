"""What a new or edited memory says about the existing ones: duplicates and possible
contradictions. Given the memory's text, each near memory is classified by
lumara_web.memory.pair_judge (word cues and cosine): a contradiction is never reported as a
duplicate, and a rewording below the duplicate threshold can be one (thresholds are
settings). The chat records the candidates the classifier calls contradictions, and asks
the model about the rest when contradiction_model_judge is on (pair_judge.reconsider)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..search import retrieval
from ..search.vector_index import VectorIndex
from ..storage.store import ScoredMemory
from . import pair_judge
from .pair_judge import PairVerdict, Thresholds


@dataclass(frozen=True)
class Findings:
    duplicates: list[ScoredMemory] = field(default_factory=list)
    contradiction_candidates: list[ScoredMemory] = field(default_factory=list)
    # The classifier's verdict on each memory above, by memory id (empty without the text).
    verdicts: dict[int, PairVerdict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"duplicates": [self._hit(hit) for hit in self.duplicates],
                "contradiction_candidates": [self._hit(hit)
                                             for hit in self.contradiction_candidates]}

    def _hit(self, hit: ScoredMemory) -> dict:
        verdict = self.verdicts.get(hit.memory.id)
        return hit.to_dict() if verdict is None else {**hit.to_dict(),
                                                      "verdict": verdict.to_dict()}


def pair_thresholds(settings: Mapping[str, Any]) -> Thresholds:
    """The classifier's cosine levels from the settings."""
    return Thresholds(duplicate=settings["duplicate_threshold"],
                      reworded_duplicate=settings["reworded_duplicate_threshold"],
                      contradiction_cue=settings["contradiction_cue_threshold"],
                      substitution_contradiction=settings["contradiction_threshold"])


def find_related(conn: Any, vector: np.ndarray, content: str, *, thresholds: Thresholds,
                 contradiction_threshold: float, limit: int, exclude_id: int | None = None,
                 index: VectorIndex | None = None) -> Findings:
    """The memories near `content` (the new memory's text, embedded as `vector`), each
    classified against it (pair_judge.classify with `thresholds`): its duplicates are
    duplicates; its contradictions, and the unjudged rest of the band from
    `contradiction_threshold` up, are candidates."""
    floor = min(contradiction_threshold, thresholds.reworded_duplicate,
                thresholds.contradiction_cue)
    # Three bands' worth (duplicates, cued contradictions, the contradiction band), plus one
    # in case the excluded memory is among them. The nearest below the floor too: an update
    # can be far in meaning ("Our dog is called Biscuit now" / "Our border terrier Pickle
    # was born in 2019": 0.32), and there only an update of the same subject counts.
    hits = retrieval.search(conn, vector, k=3 * limit + 1, threshold=-1.0, index=index)
    # Memories sharing its distinctive words too, however far their meaning: "Our cat is
    # called Biscuit" updates "Our cat is called Pixel" (their cosine is below the floor);
    # the classifier keeps only the ones its cues call contradictions.
    near = {hit.memory.id for hit in hits}
    hits += [hit for hit in retrieval.keyword_search(conn, content, vector, limit=limit,
                                                     index=index)
             if hit.memory.id not in near and hit.similarity < floor]
    duplicates, candidates, verdicts = [], [], {}
    for hit in hits:
        if hit.memory.id == exclude_id:
            continue
        verdict = pair_judge.classify(hit.memory.content, content, hit.similarity,
                                      thresholds)
        if verdict.label == "duplicate":
            duplicates.append(hit)
        elif verdict.contradicts or hit.similarity >= contradiction_threshold:
            candidates.append(hit)
        else:
            continue
        verdicts[hit.memory.id] = verdict
    # Cued contradictions first: they are the ones to show when there are many.
    candidates.sort(key=lambda hit: not verdicts[hit.memory.id].contradicts)
    duplicates, candidates = duplicates[:limit], candidates[:limit]
    kept = {hit.memory.id for hit in duplicates + candidates}
    return Findings(duplicates, candidates,
                    {key: value for key, value in verdicts.items() if key in kept})
