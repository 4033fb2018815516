"""Is an answer about the user's life grounded in their memories?

The small model answers from whatever memories it is given: asked for "my dog's name" with
only a cat remembered, it names the cat, or invents a dog. Two checks keep a personal answer
honest: before the model, the memories must speak of what the question is about ("my
mother" needs a memory that mentions a mother); after it, every name, number and date in
the answer must stand in the question or in a memory of the receipt. Words, not meaning: a
check the user can follow, and one that errs towards "I don't have a memory of that".
"""

from __future__ import annotations

import re
from typing import Sequence

from ..memory.pair_judge import stem
from ..text import STOP_WORDS

# Words after "my" that describe rather than name what is asked about ("my new car").
_DESCRIBING = frozenset("new old first last favourite favorite best current usual main own "
                        "real little big younger older eldest oldest youngest".split())
# Names for the same person: a memory of "mum" answers a question about "my mother".
_SAME_PERSON = (
    frozenset({"mum", "mom", "mother", "mama", "mommy", "mummy"}),
    frozenset({"dad", "father", "papa", "daddy"}),
    frozenset({"grandma", "grandmother", "granny", "nan", "nana", "gran"}),
    frozenset({"grandpa", "grandfather", "granddad", "grandad"}),
    frozenset({"husband", "wife", "partner", "spouse"}),
    frozenset({"kid", "kids", "child", "children", "son", "daughter"}),
)
_OWNED = re.compile(r"\b(?:my|our)\s+([a-z']+)(?:\s+([a-z']+))?", re.I)
_WORD = re.compile(r"[a-z0-9']+")
_MONTHS_AND_DAYS = frozenset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split())
_DETAIL = re.compile(r"\b(\d[\d.,:/-]*\w*|[A-Z][a-zA-Z'-]+)\b")
_SENTENCE_START = re.compile(r"(^|[.!?:]\s+|\n\s*|[\"“(]\s*)$")


def asked_about(question: str) -> str | None:
    """What a personal question is about: "mother" in "Which city was my mother born in?",
    "dog" in "What is my dog's name?"; None when it names nothing of the user's."""
    for match in _OWNED.finditer(question):
        for word in match.groups():
            word = (word or "").lower().removesuffix("'s").removesuffix("'")
            if word and word not in STOP_WORDS and word not in _DESCRIBING:
                return word
    return None


def mentions(text: str, thing: str) -> bool:
    """Does `text` speak of `thing` (the same stem, or another name for the same person)?"""
    names = next((group for group in _SAME_PERSON if thing in group), {thing})
    wanted = {stem(name) for name in names}
    return any(stem(word) in wanted for word in _WORD.findall(text.lower()))


def unsupported_details(answer: str, sources: Sequence[str]) -> list[str]:
    """The names, numbers and dates of `answer` that appear in none of `sources` (the
    question and the memories it was given)."""
    known = {word for source in sources for word in _WORD.findall(source.lower())}
    known |= {stem(word) for word in known}
    found = []
    for match in _DETAIL.finditer(answer):
        detail = match.group(1)
        lower = detail.lower()
        is_number = detail[0].isdigit()
        if not is_number and lower not in _MONTHS_AND_DAYS and (
                _SENTENCE_START.search(answer[:match.start()]) or lower in STOP_WORDS
                or lower in {"i", "you", "your", "yours"}):
            continue  # a capital that only starts a sentence, or a function word
        words = _WORD.findall(lower)
        if words and all(word in known or stem(word) in known for word in words):
            continue
        if detail not in found:
            found.append(detail)
    return found

