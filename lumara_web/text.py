"""The words of a text, as every room reads them: one stop-word list (for keyword search,
the pair judge's cues and extraction's grounding check), the content words, tokens and names
of a text, and whether a message speaks of the user's own life."""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import snowballstemmer

# English function words: articles, pronouns, auxiliaries and modals, prepositions,
# conjunctions, question words, a few adverbs. They occur in almost every sentence, so they
# tell neither which memory a question is about nor whether two sentences say the same
# thing. A short fixed list, not tuned on any evaluation data. Left out on purpose, because
# some reader needs them: negations (no, not, nor: a sentence's polarity; an extraction
# that adds one is not what the user said), before/after (opposites the pair judge reads)
# and may (a month). The apostrophe forms serve the readers whose tokens keep apostrophes.
STOP_WORDS = frozenset("""
a about again all also am an and any are around as at be been being but by can could did
do does doing done each every for from get got had has have having he her here hers him
his how i i'm if im in into is it it's its just me might mine must my myself of off on
once only onto or our ours ourselves out over own per quite really same shall she should
so some such than that the their theirs them then there these they this those to too us
under until up very was we were what when where which while who whom why will with would
you your yours yourself
""".split())

_CONTENT_WORD = re.compile(r"[a-z0-9']+")


def content_words(text: str) -> set[str]:
    """Lower-case words that carry meaning: no stop words, no single letters."""
    return {word for word in _CONTENT_WORD.findall(text.lower())
            if word not in STOP_WORDS and len(word) > 1}


_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*(?:st|nd|rd|th|am|pm|%)?|[A-Za-z]+(?:['’][A-Za-z]+)?")
# A sentence ends at . ! ? or ; followed by a space, except after a title ("Mr. Okafor").
_SENTENCE_END = re.compile(r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)[.!?;]\s+")


# A stemmer keeps the word it works on in itself: two threads sharing one garbled each
# other's words (an IndexError, a 500 on a write). One stemmer a thread.
_stemmers = threading.local()


@lru_cache(maxsize=8192)
def stem(word: str) -> str:
    """A word's stem (snowballstemmer's English, Porter 2): "sprained" and "sprain" meet."""
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = snowballstemmer.stemmer("english")
    return stemmer.stemWord(word)


def tokens(text: str) -> list[str]:
    """Words and numbers as written ("1,240", "15th", "Ines", "don't")."""
    return [token.replace("’", "'") for token in _TOKEN.findall(text)]


def names_in(*texts: str) -> set[str]:
    """Capitalised words not at the start of a sentence, in any of the texts, lower-cased:
    a name keeps its capital wherever it stands, so the first word counts when it is a name
    elsewhere."""
    found = set()
    for text in texts:
        for sentence in _SENTENCE_END.split(text):
            words = tokens(sentence)
            found |= {word.lower().removesuffix("'s") for word in words[1:]
                      if word[:1].isupper() and word != "I"
                      and (word.lower() not in STOP_WORDS or len(word) == 1)}
    return found


_PERSONAL = re.compile(r"\b(i|me|my|mine|myself|we|us|our|ours|i'm|i've|i'd|i'll)\b", re.I)
# "Tell me…", "show me…", "give me…" ask for something; that "me" does not make the question
# about the user's life ("Tell me a story about the sea" is for the model to answer).
_REQUEST_ME = re.compile(r"\b(tell|show|give)\s+me\b", re.I)


def is_personal(message: str) -> bool:
    """Does the message speak of the user's own life (so only a memory can answer it, and
    a memory drawn from it is about the user)?"""
    return bool(_PERSONAL.search(_REQUEST_ME.sub(" ", message)))
