"""Is an answer about the user's life grounded in their memories?

The small model answers from whatever memories it is given: asked for "my dog's name" with
only a cat remembered, it names the cat, or invents a dog. Two checks keep a personal answer
honest: before the model, the memories must speak of what the question is about ("my
mother" needs a memory that mentions a mother, or a kind of one: a labrador answers for a
dog); after it, every name, number and date in the answer must stand in the question or in a
memory of the receipt, and the answer must say something the memories say without adding a
word of its own ("your left ankle" when the memory says right). Words, not meaning: checks
the user can follow, which err towards quoting the memory or "I don't have a memory of that".
"""

from __future__ import annotations

import re
from typing import Sequence

from .. import lexicon
from ..search.aliases import same_person
from ..text import STOP_WORDS, content_words, names_in, stem

# Words after "my" that describe rather than name what is asked about ("my new car").
_DESCRIBING = frozenset("new old first last favourite favorite best current usual main own "
                        "real little big younger older eldest oldest youngest".split())
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
    """Does `text` speak of `thing`: the same stem, another name for the same person, or a
    kind of it ("labrador" for "dog", in WordNet)?"""
    wanted = {stem(name) for name in same_person(thing)}
    words = _WORD.findall(text.lower())
    if any(stem(word) in wanted for word in words):
        return True
    # Words and two-word names ("maine coon") that name a kind of the thing.
    candidates = [word for word in words if len(word) > 2 and word not in STOP_WORDS]
    candidates += [f"{first}_{second}" for first, second in zip(words, words[1:])]
    return any(lexicon.is_a(word, thing) for word in candidates)


def _stems(text: str) -> set[str]:
    """The stems of `text`'s content words: "sprained" and "sprain" are one word here."""
    return {stem(word) for word in content_words(text)}


# Words an answer may add to what its memories say: how it is said, not what.
_ANSWER_WORDS = frozenset("""
yes no not sorry remember remembered memory memories know known told said say says
mentioned according note noted seems seem appears recall saved
""".split())


def invented_words(answer: str, sources: Sequence[str]) -> list[str]:
    """The content words of `answer` that none of `sources` (the question and the memories)
    holds, in any form of the word."""
    known = set().union(*map(_stems, sources))
    return sorted(word for word in content_words(answer)
                  if stem(word) not in known and word not in _ANSWER_WORDS
                  and not word.isdigit() and len(word) > 2)


def adds_nothing(answer: str, question: str, memories: Sequence[str]) -> bool:
    """Does `answer` only repeat the question ("Your sourdough starter is feeding your
    sourdough"), saying no word of its memories that the question did not?"""
    asked = _stems(question)
    remembered = set().union(*map(_stems, memories))
    said = _stems(answer)
    return not (said & remembered) - asked


# What a question asks for: "Which ankle…", "What subject…", "… my dentist's phone number".
_ASKED_FOR = re.compile(
    r"\b(?:which|what)\s+(?:kind|sort|type)\s+of\s+([a-z]+)|"
    r"\b(?:which|what)\s+(?!(?:is|are|was|were|do|does|did|can|could|will|would|should|"
    r"has|have|had|time|day|date|year|month)\b)([a-z]+)|"
    r"'s\s+([a-z]+)(?:\s+([a-z]+))?", re.I)


def asked_for(question: str) -> list[str]:
    """The words naming what `question` asks for: ["ankle"] for "Which ankle did I
    sprain?", ["phone", "number"] for "What is my dentist's phone number?"."""
    matches = list(_ASKED_FOR.finditer(question))
    # "What instrument do Dorota's daughters play?" asks for an instrument.
    matches.sort(key=lambda match: match.group(3) is not None)
    for match in matches:
        words = [word.lower() for word in match.groups()
                 if word and word.lower() not in STOP_WORDS]
        if words:
            return words
    return []


def _names_a_name(memory: str) -> bool:
    return bool(_DETAIL.search(memory[1:]))  # a capitalised word past the first


def answers(memory: str, question: str, subject: str | None) -> bool:
    """Does `memory` hold what `question` asks for? It must mention what is asked for ("a
    name" being any name), else be about the subject, a name the question names, or half
    of the question's words."""
    wanted = asked_for(question)
    if wanted:
        return any(_names_a_name(memory) if word == "name" else mentions(memory, word)
                   for word in wanted)
    if subject and mentions(memory, subject) or names_in(question) & content_words(memory):
        return True
    asked = _stems(question)
    shared = asked & _stems(memory)
    return bool(shared) and 2 * len(shared) >= len(asked)


def related(memory: str, question: str, subject: str | None) -> bool:
    """Is `memory` about the question's subject, or does it share a word with it?"""
    if subject and mentions(memory, subject):
        return True
    asked = _stems(question)
    return bool(asked & _stems(memory))


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



def covers(memory: str, question: str) -> bool:
    """Does `memory` hold most of what `question` asks about (half of its content words, and
    two at least)? "I feed the sourdough starter twice a day …" covers "How do I feed the
    sourdough starter?"; "My flat is on the third floor" does not cover "How do I fix a flat
    tyre?"."""
    asked = _stems(question)
    shared = asked & _stems(memory)
    return len(shared) >= 2 and 2 * len(shared) >= len(asked)


# What a question asks for ("When…?" a time, "How much…?" a number), and the words that
# give it. An answer without one missed the point:
# "When did we get her?" → "Your dog Juno is a black labrador."
_ASKS_TIME = re.compile(r"\bwhen\b|\bwhat (date|day|time|year|month)\b|\bhow long ago\b",
                        re.I)
_ASKS_NUMBER = re.compile(r"\bhow (much|many|often|old|long|far|big|tall)\b|"
                          r"\bwhat (number|size|percentage)\b", re.I)
_TIME_WORDS = _MONTHS_AND_DAYS | frozenset(
    "ago yesterday today tomorrow tonight morning afternoon evening night noon midnight "
    "spring summer autumn fall winter day days week weeks month months year years weekend "
    "weekends daily weekly monthly yearly christmas easter birthday".split())
_NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten eleven twelve "
                          "twenty thirty forty fifty hundred thousand once twice half "
                          "dozen every".split())


def _gives(text: str, words: frozenset[str]) -> bool:
    return any(word[0].isdigit() or word in words for word in _WORD.findall(text.lower()))


def misses_what_was_asked(answer: str, question: str) -> bool:
    """Does `question` ask for a time or a number that `answer` does not give?"""
    return any(asks.search(question) and not _gives(answer, words)
               for asks, words in ((_ASKS_TIME, _TIME_WORDS), (_ASKS_NUMBER, _NUMBER_WORDS)))


def answer_fault(answer: str, question: str, memories: Sequence[str],
                 asked: str | None = None) -> str | None:
    """Why a personal answer cannot be shown as the model wrote it, or None: "detail" (a
    name, number or date that neither the question nor a memory holds), "unfaithful" (a
    word of its own, nothing from the memories, or not what `asked` — the last message,
    where `question` may hold the one before too — asks for)."""
    sources = [question, *memories]
    if unsupported_details(answer, sources):
        return "detail"
    if invented_words(answer, sources) or adds_nothing(answer, question, memories) or \
            misses_what_was_asked(answer, asked or question):
        return "unfaithful"
    return None
