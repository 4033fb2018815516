"""Turn something the user said into a proposed memory: {content, type, tags, confidence}.

The chat model writes the content (≤ 15 words) and tags under a JSON schema, so even the
small default model always returns valid JSON. The memory must be faithful: when the model's
sentence adds a word the user did not say (a name, a number, any content word) or drops part of
what they said (a name, a number, or a quarter of the rest), the user's own words are kept
instead, tidied. The type comes from the sentence's grammar (memory_types.py). The confidence is Lumara's own, from checkable cues — the small model's
self-reported confidence was constant whatever the message, so it decides nothing here.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass, field

from ..inference.engine import Engine, GenerationRequest
from ..inference.few_shot import FewShotPrompt
from ..text import content_words, is_personal, stem
from .memory_types import memory_type

MAX_CONTENT_WORDS = 15

SYSTEM_PROMPT = (
    "You extract memories for a personal memory assistant. Given a message from the user, "
    "write the one fact worth remembering as a short sentence in the user's own first-person "
    "words (at most 15 words), and 2 or 3 lowercase topic tags.")

EXAMPLES = (
    ("My brother Tom just started working as a nurse in Leeds, he loves it.",
     {"content": "My brother Tom works as a nurse in Leeds.", "tags": ["family", "work"]}),
    ("When I bake bread I always let the dough rise overnight in the fridge.",
     {"content": "I let bread dough rise overnight in the fridge.",
      "tags": ["baking", "cooking"]}),
)
PROMPT = FewShotPrompt(SYSTEM_PROMPT, tuple((said, json.dumps(extracted))
                                            for said, extracted in EXAMPLES))

SCHEMA = {
    "type": "object",
    "properties": {
        "content": {"type": "string", "minLength": 3, "maxLength": 120},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 2, "maxLength": 24},
                 "minItems": 2, "maxItems": 3},
    },
    "required": ["content", "tags"],
}

_HEDGE = re.compile(r"\b(i think|maybe|might|perhaps|probably|not sure|i guess|possibly|"
                    r"kind of|sort of)\b", re.I)
# Words a summary may leave out without losing a fact: hedges and fillers.
_DROPPABLE = frozenset(
    "think guess maybe perhaps probably actually really just basically honestly literally lol "
    "know mean kind sort like pretty quite totally absolutely definitely finally".split())
# Of the rest, the share of the user's content words a proposal may leave out.
MAX_DROPPED_SHARE = 0.25
_FLEETING = re.compile(r"\b(today|tonight|right now|at the moment|this (morning|afternoon|"
                       r"evening)|later|currently|just now)\b", re.I)


@dataclass(frozen=True)
class Proposal:
    content: str
    type: str
    tags: list[str]
    confidence: float
    reasons: list[str] = field(default_factory=list)  # why the confidence is lowered

    def to_dict(self) -> dict:
        return asdict(self)


def assess_confidence(statement: str, content: str) -> tuple[float, list[str]]:
    """How sure Lumara is that `content` is a lasting fact the user stated."""
    confidence, reasons = 0.9, []

    def cap(limit: float, reason: str) -> None:
        nonlocal confidence
        if confidence > limit:
            confidence = limit
        reasons.append(reason)

    if len(statement.split()) < 4:
        cap(0.3, "too short to be a memory")
    if not is_personal(statement):
        cap(0.7, "not about you")
    if _HEDGE.search(statement):
        cap(0.6, "sounds uncertain")
    if _FLEETING.search(statement):
        cap(0.55, "sounds temporary")
    words = content_words(content)
    grounded = len(words & content_words(statement)) / len(words) if words else 0.0
    if grounded < 0.3:
        cap(0.2, "not what you said")
    elif grounded < 0.6:
        cap(0.6, "reworded beyond what you said")
    return confidence, reasons


def _stems(text: str) -> dict[str, str]:
    """stem → the word as written, for the content words of `text`."""
    return {stem(word): word for word in content_words(text)}


def faithful_content(statement: str, proposal: str) -> str:
    """`proposal` when it says only what `statement` says and keeps its facts; else the
    user's own words, tidied."""
    said, proposed = _stems(statement), _stems(proposal)
    invented = set(proposed) - set(said)
    dropped = [word for key, word in said.items()
               if key not in proposed and word not in _DROPPABLE]
    names_or_numbers = [word for word in dropped if any(c.isdigit() for c in word)
                        or _is_capitalised(statement, word)]
    kept = [word for word in said.values() if word not in _DROPPABLE]
    too_much = kept and len(dropped) / len(kept) > MAX_DROPPED_SHARE
    if invented or names_or_numbers or too_much:
        return tidy_statement(statement)
    return proposal


def _is_capitalised(statement: str, word: str) -> bool:
    """Is `word` written with a capital inside `statement` (a name), not only at its start?"""
    return any(match.group(0)[:1].isupper() and match.start() > 0 for match in
               re.finditer(rf"\b{re.escape(word)}\b", statement, re.I))


def tidy_statement(text: str) -> str:
    """The user's words as a memory: one line, a capital first letter, a full stop."""
    sentence = " ".join(text.split()).rstrip(" ,;:-")
    if sentence and sentence[-1] not in ".!?":
        sentence += "."
    return sentence[:1].upper() + sentence[1:]


def tidy_content(text: str) -> str:
    words = " ".join(text.split()).split(" ")
    if len(words) > MAX_CONTENT_WORDS:
        words = words[:MAX_CONTENT_WORDS]
    sentence = " ".join(words).rstrip(" ,;:-")
    if sentence and sentence[-1] not in ".!?":
        sentence += "."
    return sentence[:1].upper() + sentence[1:]


def tidy_tags(tags: list) -> list[str]:
    tidy: list[str] = []
    for tag in tags:
        tag = " ".join(str(tag).lower().split())
        if re.fullmatch(r"[\w][\w -]{1,23}", tag) and tag not in tidy:  # 2–24 characters
            tidy.append(tag)
    return tidy[:3]


class MemoryExtractor:
    def __init__(self, engine: Engine, max_tokens: int = 80):
        self.engine = engine
        self.max_tokens = max_tokens

    @staticmethod
    def messages(statement: str) -> list[dict]:
        return PROMPT.messages(statement)

    def propose(self, statement: str, stop: threading.Event | None = None) -> Proposal | None:
        """The memory the model proposes for `statement`, or None if stopped or unusable."""
        job = self.engine.submit(GenerationRequest(
            self.messages(statement), max_tokens=self.max_tokens, json_schema=SCHEMA,
            purpose="extract", pinned=PROMPT.pinned), stop)
        raw = job.text()
        if job.stop.is_set():
            return None
        try:
            data = json.loads(raw)
            content = tidy_content(str(data["content"]))
            tags = tidy_tags(data.get("tags") or [])
        except (ValueError, KeyError, TypeError):
            return None  # cut short by max_tokens: no memory rather than a broken one
        if len(content) < 3:
            return None
        content = faithful_content(statement, content)
        confidence, reasons = assess_confidence(statement, content)
        return Proposal(content=content, type=memory_type(content), tags=tags,
                        confidence=confidence, reasons=reasons)
