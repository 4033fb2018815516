"""Keyword search over the memories: the SQLite FTS5 index `memory_keywords` (migration
m006), ranked by BM25. The other half of hybrid retrieval (retrieval.py fuses the two).

The user's text is never passed to FTS5 as query syntax: it is cut into words, common
function words are dropped, and each remaining word is quoted as a string, joined by OR.
Quotes, `*`, `^`, `:`, `-`, parentheses and the words NEAR/AND/OR/NOT in the text are then
plain characters or quoted words, so no input can make the query fail.
"""

from __future__ import annotations

import re
from typing import Any

from ..storage import store
from ..text import STOP_WORDS

# Most distinct words a query keeps: a long chat message (up to 8,000 characters) would
# otherwise become a query of hundreds of OR terms; the first 32 carry the question.
MAX_QUERY_TERMS = 32
# \w is Unicode-aware: accented and non-Latin words stay whole (the tokenizer folds them).
_WORD = re.compile(r"\w+")


def query_terms(text: str) -> list[str]:
    """The searchable words of `text`, lowercased, in order, without repeats or stop words
    (those are in almost every question or memory: they match thousands of rows, cost the
    most to rank and add nothing BM25 would not already weigh near zero)."""
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        word = word.strip("_")
        if not word or word in STOP_WORDS or word in terms:
            continue
        if len(word) == 1 and not word.isdigit():
            continue  # single letters ("s" of "grandma's") match nearly everything
        terms.append(word)
        if len(terms) == MAX_QUERY_TERMS:
            break
    return terms


def _quoted(term: str) -> str:
    # A \w+ word holds no double quote, so wrapping it in quotes cannot break out of them.
    return f'"{term}"'


def match_expression(text: str) -> str | None:
    """An FTS5 MATCH expression for `text` (quoted words joined by OR), or None when no
    searchable word is left."""
    terms = query_terms(text)
    return " OR ".join(map(_quoted, terms)) if terms else None


def distinctive_terms(conn: Any, terms: list[str], max_matches: int) -> list[str]:
    """The terms that match at most `max_matches` memories. A word many memories share
    ("soup" among hundreds of recipes) fills a keyword ranking with ties that only
    memory length breaks, and cannot tell the one meant from the rest; the vector ranking
    already weighs such topical words. Each count stops at max_matches + 1."""
    return [term for term in terms
            if store.keyword_match_count(conn, _quoted(term), max_matches + 1) <= max_matches]


def search(conn: Any, text: str, *, limit: int, type: str | None = None,
           max_matches: int | None = None) -> list[tuple[int, float]]:
    """(memory id, BM25 score) of the `limit` memories whose words best match `text`, best
    first (higher = better; store.keyword_matches). With `max_matches`, only words that
    match at most that many memories count (distinctive_terms). Empty when the text has no
    searchable word."""
    terms = query_terms(text)
    if max_matches is not None:
        terms = distinctive_terms(conn, terms, max_matches)
    if not terms or limit <= 0:
        return []
    return store.keyword_matches(conn, " OR ".join(map(_quoted, terms)), limit=limit,
                                 type=type)
