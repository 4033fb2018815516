"""What a new or edited memory says about the existing ones: duplicates and possible
contradictions, by cosine similarity bands (thresholds are settings). The model-based
judge that tells a reworded duplicate from a contradiction comes with the chat engine."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import retrieval
from .engine import Engine, GenerationRequest
from .store import ScoredMemory
from .vector_index import VectorIndex


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
                 exclude_id: int | None = None, index: VectorIndex | None = None) -> Findings:
    """Memories at or above `duplicate_threshold` are duplicates; those in
    [contradiction_threshold, duplicate_threshold) are contradiction candidates."""
    # Ask for both bands' worth, plus one in case the excluded memory is among them.
    hits = retrieval.search(conn, vector, k=2 * limit + 1, threshold=contradiction_threshold,
                            index=index)
    hits = [hit for hit in hits if hit.memory.id != exclude_id]
    duplicates = [hit for hit in hits if hit.similarity >= duplicate_threshold]
    candidates = [hit for hit in hits if hit.similarity < duplicate_threshold]
    return Findings(duplicates[:limit], candidates[:limit])


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

_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve "
                 "twenty thirty hundred thousand first second third").split()
_MONTHS = ("january february march april may june july august september october november "
           "december").split()
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_VALUE_WORDS = frozenset(_NUMBER_WORDS + _MONTHS + _WEEKDAYS)
# General-purpose opposites; a pair counts when each sentence holds a different side.
_OPPOSITES = (("love", "hate"), ("like", "dislike"), ("well", "badly"), ("good", "bad"),
              ("better", "worse"), ("more", "less"), ("always", "never"), ("early", "late"),
              ("hot", "cold"), ("before", "after"), ("increase", "decrease"),
              ("increases", "decreases"), ("reduces", "worsens"), ("calm", "anxious"),
              ("enjoy", "hate"), ("allowed", "forbidden"), ("true", "false"),
              ("open", "closed"), ("cheap", "expensive"), ("easy", "hard"))
_NEGATIONS = frozenset("not no never none nothing don't doesn't didn't isn't aren't wasn't "
                       "weren't can't cannot won't without".split())


@dataclass(frozen=True)
class Verdict:
    contradicts: bool
    confidence: float
    explanation: str
    source: str  # "cues" or "model"

    def to_dict(self) -> dict:
        return {"contradicts": self.contradicts, "confidence": round(self.confidence, 3),
                "explanation": self.explanation, "source": self.source}


_STOPWORDS = frozenset(
    "a an the and or but of to in on at for with from by is are was were be been am i my me "
    "we our you your it its this that these those as so if then than there their they he "
    "she his her them do does did have has had".split())


def content_words(text: str) -> set[str]:
    """Lower-case words that carry meaning (no articles, pronouns, auxiliaries)."""
    return {word for word in re.findall(r"[a-z0-9']+", text.lower())
            if word not in _STOPWORDS and len(word) > 1}


def _tokens(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9']+", text)


def contradiction_cues(a: str, b: str) -> Verdict | None:
    """A contradiction visible in the words of two similar sentences: different numbers or
    dates, different names in otherwise matching sentences, opposite words, or a negation
    on one side only. None when no cue fires."""
    tokens_a, tokens_b = _tokens(a), _tokens(b)
    lower_a, lower_b = {t.lower() for t in tokens_a}, {t.lower() for t in tokens_b}
    words_a, words_b = content_words(a), content_words(b)

    def overlap(left: set[str], right: set[str]) -> float:
        return len(left & right) / max(1, min(len(left), len(right)))

    def values(tokens: list[str]) -> set[str]:
        return {t.lower() for t in tokens if t.isdigit() or t.lower() in _VALUE_WORDS}

    values_a, values_b = values(tokens_a), values(tokens_b)
    if values_a and values_b and values_a != values_b:
        return Verdict(True, 0.75, f"Different values: {', '.join(sorted(values_a - values_b))}"
                       f" vs {', '.join(sorted(values_b - values_a))}.", "cues")

    def names(tokens: list[str]) -> set[str]:
        return {t for i, t in enumerate(tokens) if i and t[:1].isupper() and t != "I"}

    names_a, names_b = names(tokens_a) - names(tokens_b), names(tokens_b) - names(tokens_a)
    names_lower = {n.lower() for n in names_a | names_b}
    if names_a and names_b and overlap(words_a - names_lower, words_b - names_lower) >= 0.5:
        return Verdict(True, 0.7, f"Different names: {', '.join(sorted(names_a))} vs "
                       f"{', '.join(sorted(names_b))}.", "cues")
    for left, right in _OPPOSITES:
        if (left in lower_a and right in lower_b and right not in lower_a) or \
                (right in lower_a and left in lower_b and right not in lower_b):
            return Verdict(True, 0.75, f"Opposite words: '{left}' vs '{right}'.", "cues")
    negated_a, negated_b = bool(lower_a & _NEGATIONS), bool(lower_b & _NEGATIONS)
    if negated_a != negated_b and overlap(words_a - _NEGATIONS, words_b - _NEGATIONS) >= 0.6:
        return Verdict(True, 0.6, "One of them says the opposite (a negation).", "cues")
    return None


class ContradictionJudge:
    """Cues first (instant and specific), then the chat model under a JSON schema."""

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

    def judge(self, new: str, existing: str, stop: threading.Event | None = None) -> Verdict:
        cued = contradiction_cues(existing, new)
        if cued is not None:
            return cued
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
