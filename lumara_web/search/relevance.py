"""Does a memory answer the question, or is it only the nearest of unrelated ones?

A cosine alone cannot tell: with 10,000 memories of other things stored, the nearest to
"Where does my sister live?" is "My niece lives in Braga now" at 0.61, above the memory that
answers a reworded question (0.45 is common for MiniLM). Three kinds of evidence are added
to the cosine, each a mechanism a person would accept as a reason:

1. **Standing out from the crowd.** A memory that answers stands above the question's
   background, the cosine of its BACKGROUND_RANK-th nearest memory; a memory among hundreds
   alike ("my aunt lives in …", "my niece lives in …") does not. The score counts how far
   above the background a memory is (GAP_WEIGHT), so the same cosine means more in a
   collection where little else is near.
2. **Words in common.** A content word of the question in the memory, in any form of the
   word ("sprained" / "sprain"), or a word the memory uses for a kind of it ("penicillin" for
   "antibiotic", WordNet).
3. **Names and people.** A memory holding a name the question names (or that the
   question's "my brother" goes by, search/aliases.py) gains; one that holds none of the
   people a question names loses: "What food should I cook for Jonas?" is not answered by
   Tomás's tastes, nor "When's my wife's birthday?" by Carmen's.

The weights and ADMIT were chosen on the shared sample and our own dev set
(tests/data/retrieval_dev.jsonl, 10,000 distractors) and checked on a set kept unseen while
choosing them (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import lexicon
from ..text import STOP_WORDS, content_words, is_personal, names_in, stem, tokens
from .aliases import is_relation, same_person

# The background is the cosine of the question's BACKGROUND_RANK-th nearest memory (the
# retrieval's candidate pool holds that many); in a smaller collection, the lowest cosine,
# at most UNRELATED (what a sentence on another subject scores, about 0.1 for MiniLM).
BACKGROUND_RANK = 20
UNRELATED = 0.1
GAP_WEIGHT = 1.5
WORD_BONUS = 0.05
NAME_BONUS = 0.1
MISSING_NAME_PENALTY = 0.2
# A memory's subject is read from its first SUBJECT_WORDS words, past SUBJECT_FILLERS
# ("My older brother …"); a question that opens with ASKING_WHO asks for someone else.
SUBJECT_WORDS = 4
SUBJECT_FILLERS = frozenset({"my", "our", "the", "a", "an", "old", "older", "younger",
                             "little", "big", "best"})
ASKING_WHO = frozenset({"who", "whom", "whose", "who's"})
# A memory is recalled when its score reaches this: 0.6 is a cosine of 0.3 in a collection
# with nothing else near (background 0.1) with a word in common, and 0.5 among a crowd of
# look-alikes at 0.45.
ADMIT = 0.6

@dataclass(frozen=True)
class Question:
    """What the evidence is read against: the question's stemmed content words and the
    names it gives (`people`: those it names itself; `aliases`: names of the people it
    refers to, from search/aliases.py)."""

    words: frozenset[str]
    stems: frozenset[str]
    people: frozenset[str]
    relations: dict[str, frozenset[str]]
    about_user: bool  # the user's own life, no one else: see _about_user

    @classmethod
    def of(cls, text: str, relations: dict[str, frozenset[str]]) -> "Question":
        words = frozenset(word.removesuffix("'s") for word in content_words(text)
                          if len(word) > 2)
        people = frozenset(name for name in names_in(text)
                           if not lexicon.is_a(name, "location"))
        return cls(words, frozenset(map(stem, words)), people,
                   {word: frozenset(name.lower() for name in names)
                    for word, names in relations.items()},
                   _about_user(text, people, relations))


def _about_user(text: str, people: frozenset[str], relations: dict) -> bool:
    """Does the question ask about the user's own life ("What do I do for work now?"):
    personal, naming no one and no kind of person, and not asking who?"""
    first = text.lstrip().split(maxsplit=1)[:1]
    return (is_personal(text) and not people and not relations
            and not (first and first[0].lower().strip("?,.") in ASKING_WHO))


def background(nearest_cosines: list[float]) -> float:
    """The cosine a memory must stand out from, from the pool's cosines (best first)."""
    if len(nearest_cosines) >= BACKGROUND_RANK:
        return nearest_cosines[BACKGROUND_RANK - 1]
    return min([UNRELATED, *nearest_cosines])


def score(question: Question, memory: str, cosine: float, background_cosine: float) -> float:
    """The memory's relevance to the question (compare with ADMIT)."""
    memory_words = {word.removesuffix("'s") for word in content_words(memory)}
    value = cosine + GAP_WEIGHT * (cosine - background_cosine)
    if _shares_a_word(question, memory_words):
        value += WORD_BONUS
    if question.people & memory_words:
        value += NAME_BONUS
    elif question.people:
        value -= MISSING_NAME_PENALTY
    if question.about_user and _about_someone_else(memory):
        value -= MISSING_NAME_PENALTY
    for word, names in question.relations.items():
        if names & memory_words:
            value += NAME_BONUS
        elif _speaks_of_someone_else(memory, memory_words, word, names):
            value -= MISSING_NAME_PENALTY
    return value


def _about_someone_else(memory: str) -> bool:
    """Is someone other than the user the memory's subject: it opens with a name
    ("Carmen prefers …", "Tomás's birthday …") or a kind of person ("My aunt is …", "The
    plumber's name …"), and the user is not in it beside them ("Tomasz and I went …")?"""
    words = tokens(memory)[:SUBJECT_WORDS]
    if "I" in words or "we" in (word.lower() for word in words):
        return False
    opening = [word.removesuffix("'s").removesuffix("’s") for word in words
               if word.lower() not in SUBJECT_FILLERS]
    if not opening:
        return False
    first = opening[0]
    return ((first[:1].isupper() and first.lower() not in STOP_WORDS
             and not lexicon.is_word(first))
            or is_relation(first.lower()))


def _speaks_of_someone_else(memory: str, memory_words: set[str], word: str,
                            names: frozenset[str]) -> bool:
    """Is a memory about another person than the question's `word` ("my brother", known
    by `names`)? It names people but not them ("Carmen's birthday" for "my wife Ines"),
    or names no one and speaks of another kind of person ("my aunt" for "grandma")."""
    if _speaks_of(memory_words, word):
        return False
    named = {name for name in names_in(memory) if not lexicon.is_a(name, "location")}
    if named:
        return bool(names)
    return any(is_relation(each) for each in memory_words)


def _speaks_of(memory_words: set[str], word: str) -> bool:
    """Does a memory speak of `word` (a kind of person or animal): the word in any form,
    another word for the same person, or a kind of it ("labrador" for "dog")?"""
    wanted = {stem(each) for each in same_person(word)}
    return any(stem(each) in wanted or lexicon.is_a(each, word)
               for each in memory_words if len(each) > 2)


def _shares_a_word(question: Question, memory_words: set[str]) -> bool:
    memory_words = {word for word in memory_words if len(word) > 2}
    if question.stems & {stem(word) for word in memory_words}:
        return True
    return any(lexicon.is_a(word, wanted) for word in memory_words
               for wanted in question.words)
