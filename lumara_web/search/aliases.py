"""Who "my brother" is: the names the memories give the people and animals of the user's life.

People say "my brother Tomasz works as an anaesthetist" once, then "Tomasz did his degree in
Wrocław". A question about "my brother" is then about Tomasz, but shares no word with the
second memory, and the embedding of "Where did my brother go to university?" is far from it.
`expanded` writes the names into the question ("Where did my brother Tomasz go to
university?"), which the retrieval embeds and searches beside the question itself.

A name is taken from memories that say "my/our <word> <Name>" or "<Name>, my <word>", where
the word names a kind of person or animal (WordNet): "my brother Tomasz", "our cat Biscuit",
"Renata, my colleague". A word with more than MAX_NAMES names (three colleagues) is left as it
is: the question does not say which one it means.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from .. import lexicon
from ..storage import store
from ..text import STOP_WORDS
from . import keyword_index

# Memories read per word: every memory that mentions "my brother" in a real collection, and
# a bound for a word in thousands of memories ("friend": ~2 ms for 500).
MEMORIES_PER_WORD = 500
# Words of a question expanded at most (each costs one keyword query).
MAX_WORDS = 3
# More names than this for one word: it is ambiguous, and left alone.
MAX_NAMES = 2
# (database file, word) → (change-log position, names): what names_for found, valid while
# the memories are unchanged; at most KNOWN_WORDS entries (then it starts afresh).
KNOWN_WORDS = 1024
_known: dict[tuple[str, str], tuple[int, frozenset[str]]] = {}
_known_lock = threading.Lock()
# Words for the same person: a memory of "my wife Ines" answers a question about "my spouse".
SAME_PERSON = (
    frozenset({"mum", "mom", "mother", "mama", "mommy", "mummy"}),
    frozenset({"dad", "father", "papa", "daddy"}),
    frozenset({"grandma", "grandmother", "granny", "nan", "nana", "gran"}),
    frozenset({"grandpa", "grandfather", "granddad", "grandad"}),
    frozenset({"husband", "wife", "partner", "spouse"}),
    frozenset({"kid", "kids", "child", "children", "son", "daughter"}),
    frozenset({"boss", "manager"}),
)
_NAME = r"([A-Z][^\W\d_]+)"
_WORD = re.compile(r"\b([a-z]+)\b('s)?", re.I)
_NOT_NAMES = frozenset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split())


def _introductions(word: str) -> re.Pattern:
    """"my brother Tomasz", "our cat, Biscuit,", "my old friend Jonas", "Renata, my
    colleague", "my husband is called Sam"."""
    return re.compile(
        rf"\b(?:my|our)\s+(?:[a-z-]+\s+){{0,2}}?{word}(?:'s)?,?\s+"
        rf"(?:(?:is\s+)?(?:called|named)\s+)?{_NAME}|"
        rf"\b{_NAME},\s+(?:my|our)\s+(?:[a-z-]+\s+){{0,2}}?{word}\b", re.I)


def same_person(word: str) -> frozenset[str]:
    """The words that name the same person as `word` ("spouse": wife, husband, …)."""
    return next((group for group in SAME_PERSON if word in group), frozenset({word}))


def is_relation(word: str) -> bool:
    """Does `word` name a kind of person or animal ("brother", "colleague", "cat") in the
    sense people usually mean? Not "night" or "card", persons only in rare senses."""
    return word not in STOP_WORDS and len(word) > 2 and (
        any(word in group for group in SAME_PERSON)
        or lexicon.is_a(word, "person", usually=True)
        or lexicon.is_a(word, "animal", usually=True))


def names_for(conn: Any, word: str) -> set[str]:
    """The names the memories give `word` (a kind of person or animal, singular). Kept
    until the memories change: every question about "my sister" asks it again."""
    key = (store.database_file(conn), word)
    seq = store.memory_change_seq(conn)
    with _known_lock:
        known = _known.get(key)
    if known is not None and known[0] == seq:
        return set(known[1])
    found = _names_for(conn, word)
    with _known_lock:
        if len(_known) >= KNOWN_WORDS:
            _known.clear()
        _known[key] = (seq, frozenset(found))
    return found


def _names_for(conn: Any, word: str) -> set[str]:
    words = same_person(word)
    found: set[str] = set()
    ids = [memory_id for memory_id, _ in keyword_index.search(
        conn, " ".join(sorted(words)), limit=MEMORIES_PER_WORD)]
    contents = store.contents_by_id(conn, ids).values()
    patterns = [_introductions(re.escape(each)) for each in sorted(words)]
    for content in contents:
        for pattern in patterns:
            for match in pattern.finditer(content):
                name = match.group(1) or match.group(2)
                if name[0].isupper() and name.lower() not in STOP_WORDS | _NOT_NAMES:
                    found.add(name)
    return found


def people_in(conn: Any, text: str) -> dict[str, frozenset[str]]:
    """The words of `text` that name a kind of person or animal ("brother", "nieces" read
    as "niece"), each with the names the memories give it (none, one or several)."""
    found: dict[str, frozenset[str]] = {}
    for match in _WORD.finditer(text):
        word = match.group(1).lower()
        if word in STOP_WORDS:  # "does" is not a plural of "doe"
            continue
        singular = word[:-1] if word.endswith("s") and is_relation(word[:-1]) else word
        if len(found) == MAX_WORDS or singular in found or not is_relation(singular):
            continue
        found[singular] = frozenset(names_for(conn, singular))
    return found


def expanded(text: str, people: dict[str, frozenset[str]]) -> str:
    """`text` with the names of its person words written after them ("my brother" → "my
    brother Tomasz"), or `text` itself when none has one name or two."""
    result = text
    for match in _WORD.finditer(text):
        word = match.group(1).lower()
        names = sorted(people.get(word, people.get(word[:-1], frozenset())) - _named(text))
        if names and len(names) <= MAX_NAMES:
            said = f"{match.group(1)} {' and '.join(names)}{match.group(2) or ''}"
            result = result.replace(match.group(0), said, 1)
    return result


def _named(text: str) -> set[str]:
    return {word for word in re.findall(_NAME, text)}
