"""What a new or edited memory says about the existing ones: duplicates and possible
contradictions. Given the memory's text, each near memory is classified by
lumara_web.memory.pair_judge (word cues and cosine): a contradiction is never reported as a
duplicate, and a rewording below the duplicate threshold can be one (thresholds are
settings). The chat judges the remaining candidates (ContradictionJudge: the classifier's
verdict, the cues, and the model when contradiction_model_judge is on)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..inference.engine import Engine, GenerationRequest
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
    # in case the excluded memory is among them.
    hits = retrieval.search(conn, vector, k=3 * limit + 1, threshold=floor, index=index)
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


# -- judging a possible contradiction ----------------------------------------------------
JUDGE_SYSTEM_PROMPT = (
    "You check a personal memory store for contradictions. Two statements contradict when "
    "both cannot be true at the same time (different values for the same thing, or one "
    "denies the other). Statements that say the same thing in other words, or talk about "
    "different things, do not contradict.")

JUDGE_EXAMPLES = (
    ("I drink coffee every morning.", "Every morning I have a coffee.",
     {"contradicts": False, "confidence": 0.9, "explanation": "Both say the same thing."}),
    ("My brother lives in Leeds.", "My brother lives in York.",
     {"contradicts": True, "confidence": 0.9,
      "explanation": "They give different cities for where the brother lives."}),
)

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "contradicts": {"type": "boolean"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "explanation": {"type": "string", "maxLength": 160},
    },
    "required": ["contradicts", "confidence", "explanation"],
}

@dataclass(frozen=True)
class Verdict:
    contradicts: bool
    confidence: float
    explanation: str
    source: str  # "cues" or "model"

    def to_dict(self) -> dict:
        return {"contradicts": self.contradicts, "confidence": round(self.confidence, 3),
                "explanation": self.explanation, "source": self.source}


def contradiction_cues(a: str, b: str) -> Verdict | None:
    """A contradiction visible in the words of two sentences about the same thing
    (pair_judge.cues: different values in one slot, opposite words, a negation or dislike
    on one side only). None when no cue fires."""
    reason = pair_judge.cues(a, b).contradiction
    return None if reason is None else Verdict(True, pair_judge.CUE_CONFIDENCE, reason, "cues")


class ContradictionJudge:
    """Cues first (instant and specific), then, when asked, the chat model under a JSON
    schema."""

    def __init__(self, engine: Engine, max_tokens: int = 80):
        self.engine = engine
        self.max_tokens = max_tokens

    @staticmethod
    def messages(new: str, existing: str) -> list[dict]:
        messages = [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}]
        for a, b, verdict in JUDGE_EXAMPLES:
            messages += [{"role": "user", "content": f"A: {a}\nB: {b}"},
                         {"role": "assistant", "content": json.dumps(verdict)}]
        return messages + [{"role": "user", "content": f"A: {existing}\nB: {new}"}]

    def judge(self, new: str, existing: str, stop: threading.Event | None = None, *,
              use_model: bool = True, classified: PairVerdict | None = None) -> Verdict:
        """`use_model` False: the cues alone (the contradiction_model_judge setting; the
        135M model found none of the measured contradictions, docs/QUALITY.md).
        `classified`: the classifier's verdict on the pair, when the finding has one (it
        also weighs the cosine: a one-word swap between close sentences)."""
        if classified is not None and classified.contradicts:
            return Verdict(True, classified.confidence, classified.explanation,
                           classified.source)
        cued = contradiction_cues(existing, new)
        if cued is not None:
            return cued
        if not use_model:
            return Verdict(False, 0.0, "No word cue says they contradict.", "cues")
        job = self.engine.submit(GenerationRequest(
            self.messages(new, existing), max_tokens=self.max_tokens,
            json_schema=JUDGE_SCHEMA, purpose="judge", pinned=1 + 2 * len(JUDGE_EXAMPLES)),
            stop)
        raw = job.text()
        try:
            data = json.loads(raw)
            return Verdict(bool(data["contradicts"]), float(data["confidence"]),
                           str(data["explanation"])[:160], "model")
        except (ValueError, KeyError, TypeError):
            return Verdict(False, 0.0, "The model gave no usable verdict.", "model")
