"""Telling a duplicate from a contradiction: what two memories are to each other.

Cosine similarity (MiniLM) alone cannot do it: "My shoe size is 42." and "My shoe size is
39." score 0.90 — above the duplicate threshold — while true rewordings score 0.64–0.85.
The decision here (`classify`, the default: "cues+cosine") reads the words first:

1. A contradiction cue, in two sentences that otherwise say the same thing about the same
   thing (most of their content words, stemmed, are shared), makes a contradiction:
   - different values in the same slot: numbers (digits, number words, ordinals), dates
     (months, weekdays), colours, compass sides, names (capitalised words);
   - opposite polarity: a negation on one side only ("not", "never", "n't", "no", and
     verbs that negate, such as "skip" or "avoid"), where words of liking and disliking
     flip the sign too — so "I don't like X" and "I hate X" agree;
   - opposite words from a small, general list of antonyms (short/long, cheap/expensive…).
   Hard rule: a pair with a contradiction cue is never a duplicate, whatever its cosine.
2. A pair that swaps one or two words after a shared start ("I prefer aisle seats" /
   "I prefer window seats") is never a duplicate: at or above the contradiction threshold
   a contradiction of low confidence, for review; below, related (only knowledge of the
   world tells a one-value slot from a many-value one; the cosine is the hint).
3. Otherwise cosine decides, helped by the words: at or above `duplicate` it is a
   duplicate; at or above `reworded_duplicate` it is a duplicate too when the sentences
   state the same values (the same date, number or name) or share most content words of
   both (one that adds facts to the other is no duplicate); at or above `related` it is
   related; below, unrelated.

Measured (docs/QUALITY.md, real MiniLM): on the development pairs
(tests/data/pairs_dev.jsonl, the set the rules were tuned on) cosine bands alone reach
duplicate precision 0.63 and contradiction F1 0.40; cues+cosine 1.00 and 0.90 (shared
sample: 0.89 and 0.86). The chat model (SmolLM2-135M) is measured as a judge too
(ContradictionJudge: `model`, `cues+cosine+model`, asked as the chat asks it): it finds
almost none of the contradictions, so the default does not call it (the
contradiction_model_judge setting), and POST /api/memories never waits on a model.
Contradictions that need knowledge of the world ("I am a vegan." / "I eat eggs every
morning.") are still missed: the cues see words only.

The opposites below are a short general list. What is a kind of what (a labrador is a dog)
comes from WordNet (lumara_web.lexicon), for renamings: "Our dog is called Nala" updates "We
got a black labrador called Juno". Stemming is snowballstemmer's English (Porter 2) stemmer.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import snowballstemmer

from .. import lexicon
from ..inference.engine import Engine, GenerationRequest
from ..inference.few_shot import FewShotPrompt
from ..text import STOP_WORDS, names_in, tokens

LABELS = ("duplicate", "contradiction", "related", "unrelated")


@dataclass(frozen=True)
class Thresholds:
    """Cosine levels the decision uses (MiniLM all-MiniLM-L6-v2 scale)."""
    duplicate: float = 0.85  # the `duplicate_threshold` setting
    # Rewordings that MiniLM scores low: 0.64–0.85 on the development pairs.
    reworded_duplicate: float = 0.70
    # Unrelated pairs score below ~0.2 with MiniLM; related ones above ~0.23.
    related: float = 0.20
    # Below this even a cue is not trusted: the sentences are too far apart to be about one
    # thing (the frame-overlap test guards the rest).
    contradiction_cue: float = 0.45
    # A one-word swap this close (the `contradiction_threshold` setting) is more likely a
    # changed value ("the printer is in the spare room" / "... in the garage") than a
    # second one: a contradiction of low confidence, for the user to review. Below it,
    # related ("allergic to cats" / "allergic to dust mites": 0.55 on the dev pairs).
    substitution_contradiction: float = 0.70


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class PairVerdict:
    label: str  # one of LABELS
    confidence: float
    explanation: str
    source: str  # "cosine", "cues", "cues+cosine" or "model"

    @property
    def contradicts(self) -> bool:
        return self.label == "contradiction"

    def to_dict(self) -> dict:
        return {"label": self.label, "confidence": round(self.confidence, 3),
                "explanation": self.explanation, "source": self.source}


# -- the words ---------------------------------------------------------------------------
# Adverbs of frequency and hedges: they rarely change what a statement is about.
_FILLERS = frozenset("usually often sometimes mostly generally normally typically still "
                     "currently now always".split())
_NEGATIONS = frozenset("not no never none nothing nobody nowhere neither nor cannot "
                       "can't don't doesn't didn't isn't aren't wasn't weren't won't "
                       "wouldn't shouldn't couldn't haven't hasn't hadn't".split())
# Verbs that deny their object: "I skip breakfast" says "I don't eat breakfast".
_NEGATING_VERBS = frozenset("skip skips skipped avoid avoids avoided lack lacks lacked "
                            "quit quits quitted refuse refuses refused".split())
# Liking and disliking: a sign, combined with negation ("don't like" = "dislike").
_LIKING = frozenset("love loves loved like likes liked enjoy enjoys enjoyed adore adores "
                    "fond".split())
_DISLIKING = frozenset("hate hates hated dislike dislikes disliked detest detests loathe "
                       "loathes".split())
# General opposites (no topic-specific pairs): each side of a pair, in any inflection the
# stemmer maps to the same stem.
_OPPOSITES = (
    ("good", "bad"), ("better", "worse"), ("best", "worst"), ("well", "badly"),
    ("more", "less"), ("most", "least"), ("early", "late"), ("earlier", "later"),
    ("before", "after"), ("hot", "cold"), ("warm", "cool"), ("short", "long"),
    ("tall", "short"), ("big", "small"), ("large", "small"), ("high", "low"),
    ("fast", "slow"), ("cheap", "expensive"), ("easy", "hard"), ("easy", "difficult"),
    ("open", "closed"), ("true", "false"), ("allowed", "forbidden"), ("quiet", "loud"),
    ("quiet", "noisy"), ("light", "heavy"), ("light", "dark"), ("bright", "dark"), ("full", "empty"),
    ("wet", "dry"), ("safe", "dangerous"), ("strong", "weak"), ("rich", "poor"),
    ("happy", "sad"), ("young", "old"), ("new", "old"), ("increase", "decrease"),
    ("win", "lose"), ("pass", "fail"), ("accept", "reject"), ("agree", "disagree"),
    ("remember", "forget"), ("buy", "sell"), ("asleep", "awake"), ("alive", "dead"),
    ("positive", "negative"), ("married", "single"), ("married", "divorced"), ("present", "absent"),
    ("inside", "outside"), ("above", "below"), ("left", "right"),
    ("possible", "impossible"), ("legal", "illegal"), ("healthy", "unhealthy"),
    ("tolerant", "intolerant"), ("comfortable", "uncomfortable"), ("able", "unable"),
    ("likely", "unlikely"), ("pleasant", "unpleasant"), ("polite", "rude"),
    ("clean", "dirty"), ("thick", "thin"), ("wide", "narrow"), ("sweet", "bitter"),
    ("introvert", "extrovert"), ("introverted", "extroverted"),
)
# Effects in opposite directions on the same thing: "X eases my back pain" / "X makes my
# back pain worse". Most things a person says something lessens are bad ones (pain,
# stress, swelling), so "worse" goes with the raising side.
_LESSENING = ("reduce", "lower", "lessen", "ease", "relieve", "decrease")
_WORSENING = ("increase", "raise", "worsen", "worse", "aggravate")
_OPPOSITES += tuple((down, up) for down in _LESSENING for up in _WORSENING
                    if (down, up) not in _OPPOSITES)
_NUMBER_WORDS = {word: str(value) for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
                      "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100",
                      "once": "1", "twice": "2", "thrice": "3", "dozen": "12"})
_ORDINALS = {word: str(value) for value, word in enumerate(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
    "twelfth".split())}
_MONTHS = frozenset("january february march april may june july august september october "
                    "november december".split())
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
_COLOURS = frozenset("red orange yellow green blue purple violet pink brown black white grey "
                     "gray silver gold beige navy turquoise".split())
_SIDES = frozenset("north south east west northern southern eastern western".split())
# Titles stay part of a name, not a value of their own ("Mr. Okafor" vs "Mrs. Lindqvist"
# differ by the name).
_TITLES = frozenset("mr mrs ms miss dr prof".split())


_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=4096)
def stem(word: str) -> str:
    return _stemmer.stemWord(word)


_OPPOSITE_STEMS = tuple((stem(left), stem(right)) for left, right in _OPPOSITES)
_LIKING_STEMS = frozenset(stem(word) for word in _LIKING)
_DISLIKING_STEMS = frozenset(stem(word) for word in _DISLIKING)


def _value(token: str, position: int, names: set[str]) -> tuple[str, str] | None:
    """(kind, normalized value) when `token` fills a value slot, else None."""
    lower = token.lower()
    digits = re.fullmatch(r"(\d+(?:[.,:]\d+)*)(st|nd|rd|th|am|pm|%)?", lower)
    if digits:
        number = digits.group(1)
        if re.fullmatch(r"\d{1,3}(,\d{3})+", number):  # 15,000 is one number
            number = number.replace(",", "")
        return "number", number + (digits.group(2) if digits.group(2) in ("am", "pm", "%")
                                   else "")
    if lower in _NUMBER_WORDS:
        return "number", _NUMBER_WORDS[lower]
    if lower in _ORDINALS:
        return "number", _ORDINALS[lower]
    singular = lower[:-1] if lower.endswith("s") else lower
    if singular in _WEEKDAYS or lower in _WEEKDAYS:
        return "date", singular
    if lower in _MONTHS and (lower != "may" or token == "May" and position > 0):
        return "date", lower
    if lower in _COLOURS:
        return "colour", lower
    if lower in _SIDES:
        return "side", lower[:-3] if lower.endswith("ern") else lower
    if lower in names and lower != "i":
        return "name", lower
    return None


@dataclass(frozen=True)
class Reading:
    """What the cues need from one sentence."""
    frame: frozenset[str]  # stems of the content words that are not values
    values: frozenset[tuple[str, str]]  # (kind, value)
    negative: bool  # the statement's polarity, after negations and dislikes
    polarity_words: tuple[str, ...]  # the words that set it ("not", "love", "hate"…)
    stems: frozenset[str]  # every content stem, values included
    sequence: tuple[str, ...]  # the same, in sentence order


def read(text: str, names: set[str]) -> Reading:
    frame, values, stems, sequence = set(), set(), set(), []
    negations, polarity_words = 0, []
    for position, token in enumerate(tokens(text)):
        lower = token.lower()
        if lower in _NEGATIONS or lower.endswith("n't"):
            negations += 1
            polarity_words.append(lower)
            continue
        if lower in _TITLES:  # part of a name: "Mr. Okafor" vs "Mrs. Lindqvist"
            continue
        if lower in _NEGATING_VERBS:
            negations += 1
            polarity_words.append(lower)
        value = _value(token, position, names)
        if value is not None:
            values.add(value)
            stems.add(value[1])
            sequence.append(value[1])
            continue
        if lower in STOP_WORDS or lower in _FILLERS or len(lower) < 2 and not lower.isdigit():
            continue
        word = stem(lower)
        if word in _LIKING_STEMS or word in _DISLIKING_STEMS:
            negations += word in _DISLIKING_STEMS
            polarity_words.append(lower)
            stems.add(word)
            sequence.append(word)
            continue
        frame.add(word)
        stems.add(word)
        sequence.append(word)
    return Reading(frozenset(frame), frozenset(values), negations % 2 == 1,
                   tuple(polarity_words), frozenset(stems), tuple(sequence))


def overlap(left: frozenset[str], right: frozenset[str]) -> float:
    """Shared share of the smaller set (1.0: one set holds the other)."""
    if not left or not right:
        return 0.0
    return len(left & right) / min(len(left), len(right))


def mutual_overlap(left: frozenset[str], right: frozenset[str]) -> float:
    """Shared share of the larger set: low when one sentence adds facts to the other."""
    if not left or not right:
        return 0.0
    return len(left & right) / max(len(left), len(right))


# Share of content stems two sentences must share to be about the same thing.
FRAME_OVERLAP = 0.6


@dataclass(frozen=True)
class Cues:
    """What the words of a pair say, before any cosine."""
    contradiction: str | None  # why they contradict, or None
    same_values: bool  # both state values, and the same ones
    values_differ: bool  # one states a value the other does not
    overlap: float  # shared content stems, of the smaller sentence
    # Shared content stems, of the larger sentence: a rewording shares most of both; "I love
    # coffee" / "I love coffee with oat milk at breakfast" shares all of the first only, and
    # merging them as duplicates would drop what the second adds.
    mutual_overlap: float
    # The same sentence with one word (or two) swapped for another: "I prefer aisle seats"
    # / "I prefer window seats". Never a rewording; a contradiction when the slot holds one
    # value, related when it holds many ("allergic to cats" / "allergic to dogs"): only
    # knowledge of the world tells which, so it is left to the judge.
    substitution: bool


def cues(a: str, b: str) -> Cues:
    names = names_in(a, b)
    left, right = read(a, names), read(b, names)
    shared_frame = overlap(left.frame, right.frame)
    same_values = bool(left.values) and left.values == right.values
    word_overlap = overlap(left.stems, right.stems)
    return Cues(_contradiction(left, right, shared_frame), same_values,
                left.values != right.values, word_overlap,
                mutual_overlap(left.stems, right.stems), _substitution(left, right))


def _substitution(left: Reading, right: Reading) -> bool:
    """One run of at most two words swapped, after a shared start: the same subject with a
    different complement ("My brother is a pilot" / "… a teacher"). A swap at the start
    changes how the subject is named, which is how rewordings differ ("My car is a grey
    Toyota" / "I drive a grey Toyota")."""
    matcher = difflib.SequenceMatcher(a=left.sequence, b=right.sequence, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if len(changes) != 1 or changes[0][0] != "replace":
        return False
    _, start_a, end_a, start_b, end_b = changes[0]
    return start_a > 0 and start_b > 0 and end_a - start_a <= 2 and end_b - start_b <= 2


def _contradiction(left: Reading, right: Reading, shared_frame: float) -> str | None:
    only_left, only_right = left.values - right.values, right.values - left.values
    kinds = {kind for kind, _ in only_left} & {kind for kind, _ in only_right}
    # The same slot holds different values: the rest of the sentences must match (one word
    # more on one side at most), or "my son was born in 2018" would contradict "my daughter
    # was born in 2015", and "my yoga class is on Thursdays" "my pottery class is on
    # Tuesdays".
    same_slot = left.frame == right.frame or (
        shared_frame >= FRAME_OVERLAP and len(left.frame ^ right.frame) <= 1)
    # Likes, dislikes and denials hold many values at once: "I love Thai food" does not deny
    # "I love Greek food", nor "I don't live in Rome" "I don't live in Paris".
    many_valued = bool(left.polarity_words) and \
        set(left.polarity_words) == set(right.polarity_words)
    if kinds and same_slot and not many_valued:
        kind = sorted(kinds)[0]
        shown = (", ".join(sorted(value.capitalize() if kind == "name" else value
                                  for k, value in side if k == kind))
                 for side in (only_left, only_right))
        return f"Different {_KIND_NAMES[kind]}: {next(shown)} vs {next(shown)}."
    for words, (one, other) in zip(_OPPOSITES, _OPPOSITE_STEMS):
        for (this, that), shown in (((one, other), words), ((other, one), words[::-1])):
            if this in left.frame - right.frame and that in right.frame - left.frame and \
                    _same_subject(left.frame - {this}, right.frame - {that}):
                return f"Opposite words: '{shown[0]}' vs '{shown[1]}'."
    if shared_frame < FRAME_OVERLAP:
        return None
    if left.negative != right.negative:
        shown = (" ".join(f"'{word}'" for word in side.polarity_words) or "no negation"
                 for side in (left, right))
        return f"One says the opposite of the other: {next(shown)} vs {next(shown)}."
    return None


def _same_subject(left: frozenset[str], right: frozenset[str]) -> bool:
    """What remains of two sentences once the words that differ on purpose are set aside
    is the same, or mostly the same."""
    return left == right or overlap(left, right) >= FRAME_OVERLAP


_KIND_NAMES = {"number": "numbers", "date": "dates", "colour": "colours", "side": "sides",
               "name": "names"}


# -- the classifiers (variants measured by pair_eval; `classify` is the default) ---------
# A cue's confidence: specific (precision 1.00 on every measured set) but it reads words,
# not meaning; above the chat's contradiction_judge_confidence (0.5), so it is recorded.
CUE_CONFIDENCE = 0.8
# Share of content stems a rewording in [reworded_duplicate, duplicate) must share: half
# ("I am lactose intolerant." / "I can't digest lactose.").
REWORDED_OVERLAP = 0.5
# Below CUE_CONFIDENCE: a swapped word is a weaker sign than a clashing value or negation.
SUBSTITUTION_CONFIDENCE = 0.6

def classify(a: str, b: str, similarity: float,
             thresholds: Thresholds = DEFAULT_THRESHOLDS) -> PairVerdict:
    """The default decision, "cues+cosine": instant (no model)."""
    verdict = _classify_sentences(a, b, similarity, thresholds)
    if verdict.label in ("contradiction", "duplicate"):
        return verdict
    update = clause_contradiction(a, b)
    if update:
        return PairVerdict("contradiction", CUE_CONFIDENCE, update, "cues")
    return verdict


def _classify_sentences(a: str, b: str, similarity: float, thresholds: Thresholds) -> PairVerdict:
    found = cues(a, b)
    if found.contradiction and similarity >= thresholds.contradiction_cue:
        return PairVerdict("contradiction", CUE_CONFIDENCE, found.contradiction, "cues")
    if found.substitution and similarity >= thresholds.substitution_contradiction:
        return PairVerdict("contradiction", SUBSTITUTION_CONFIDENCE, "The same statement "
                           "with a different word in one place.", "cues+cosine")
    if found.substitution and similarity >= thresholds.related:
        return PairVerdict("related", similarity, "The same statement with a different "
                           "word in one place: it may contradict.", "cues+cosine")
    if similarity >= thresholds.duplicate:
        return PairVerdict("duplicate", similarity, "Nearly the same meaning.", "cosine")
    if similarity >= thresholds.reworded_duplicate:
        if found.same_values:
            return PairVerdict("duplicate", similarity, "A rewording that states the same "
                               "values.", "cues+cosine")
        if found.mutual_overlap >= REWORDED_OVERLAP and not found.values_differ:
            return PairVerdict("duplicate", similarity, "A rewording with the same content "
                               "words.", "cues+cosine")
    return classify_by_cosine(similarity, thresholds, contradiction_band=None)


# -- updates: one clause of a memory changed ----------------------------------------------
# "My cousin Ines lives in Valencia and teaches chemistry." / "My cousin Ines lives in Madrid
# now.": the whole sentences differ too much for the cues, but their first clauses are the
# same statement with another city. The shared subject and frame are the evidence, so no
# cosine is needed; an addition ("… also plays the cello") never contradicts.
_ADDITION = re.compile(r"\b(also|too|as well|another|additionally|besides)\b", re.I)
# How an update says what a memory said, in the memory's words.
_SAME_RELATION = ((re.compile(r"\b(moved|relocated|has moved|have moved) (back )?to\b", re.I),
                   "lives in"),
                  (re.compile(r"\b(is|are) (now )?based in\b", re.I), "lives in"),
                  (re.compile(r"\b(is|are) (called|named)\b", re.I), "is"))
# When a change happened says nothing about what changed.
_NOW = re.compile(r"\b(now|these days|nowadays|currently|at the moment|anymore|actually|"
                  r"recently|lately|(last|this) (week|month|year|spring|summer|autumn|fall|"
                  r"winter)|an? (week|month|year) ago|\w+ (days|weeks|months|years) ago)\b"
                  r"[,]?\s*", re.I)
_CLAUSE_BREAK = re.compile(r";\s*|,\s+(?:and\s+)?|\s+(?:and|who)\s+(?=[a-z]+(?:s|ed)\b)")
_VERB = re.compile(r"\b(is|are|was|were|has|have|had|[a-z]+s|[a-z]+ed)\b")


def clauses(text: str) -> list[str]:
    """A sentence's clauses, each with the first clause's subject where it has none: "My
    cousin Ines lives in Valencia and teaches chemistry" → "My cousin Ines lives in
    Valencia", "My cousin Ines teaches chemistry"."""
    text = _NOW.sub("", text).strip(" .!?")
    for pattern, replacement in _SAME_RELATION:
        text = pattern.sub(replacement, text)
    parts = [part.strip() for part in _CLAUSE_BREAK.split(text) if part and part.strip()]
    if len(parts) < 2:
        return [text]
    verb = _VERB.search(parts[0])
    subject = parts[0][:verb.start()].strip() if verb else ""
    return [parts[0]] + [part if not subject or _VERB.match(part) is None
                         else f"{subject} {part}" for part in parts[1:]]


def clause_contradiction(a: str, b: str) -> str | None:
    """Why one clause of `a` and one of `b` contradict, or None (additions never do)."""
    if _ADDITION.search(a) or _ADDITION.search(b):
        return None
    for one in clauses(a):
        for other in clauses(b):
            found = cues(one, _in_words_of(one, other)).contradiction
            if found:
                return found
    return renaming(a, b)


def _in_words_of(one: str, other: str) -> str:
    """`other` with each word that names a kind of a word of `one` put as `one` says it:
    "My dad lives in Odense" against "My father Henrik lives in Aarhus" reads "My father
    lives in Odense"."""
    theirs = [word for word in tokens(one) if word.islower() and word not in STOP_WORDS]

    def put(match: re.Match) -> str:
        word = match.group(0)
        if not word.islower() or word in STOP_WORDS or word in theirs:
            return word
        return next((kind for kind in theirs if lexicon.is_a(word, kind)), word)

    return re.sub(r"[A-Za-z]+", put, other)


# What something of the user's is called: "our dog is called Nala", "a black labrador
# called Juno", "my cat's name is Pixel". Someone else's ("my sister's cat") is theirs.
_NAMING = re.compile(r"(?<!')\b([a-z]+)(?:'s name is| (?:is |was )?(?:called|named)) "
                     r"([A-Z][\w-]*)")
# An animal of the user's named beside its kind: "our border terrier Pickle".
_PET_NAMED = re.compile(r"\b(?:[Mm]y|[Oo]ur)\s+(?:[a-z]+\s+){0,2}?([a-z]+)\s+([A-Z][\w-]*)")
_SOMEONE_ELSES = re.compile(r"\b\w+'s\s+(?:\w+\s+)?$")
_ANOTHER_ONE = re.compile(r"\b(second|other|new)\b", re.I)


def namings(text: str) -> list[tuple[str, str]]:
    """(thing, name) for each thing of the user's that `text` names."""
    found = []
    for match in _NAMING.finditer(text):
        if not _SOMEONE_ELSES.search(text[:match.start(1)]):
            found.append((match.group(1), match.group(2)))
    for match in _PET_NAMED.finditer(text):
        thing = match.group(1)
        if lexicon.is_a(thing, "animal"):
            found.append((thing, match.group(2)))
    return found


def renaming(a: str, b: str) -> str | None:
    """Why `a` and `b` give one thing of the user's two names (the same word, or one a kind
    of the other: "labrador" and "dog"), or None. A second one ("our new puppy is called
    Bo") is no renaming."""
    if _ANOTHER_ONE.search(a) or _ANOTHER_ONE.search(b):
        return None
    for thing, name in namings(a):
        for other_thing, other_name in namings(b):
            same_thing = stem(thing) == stem(other_thing) or lexicon.is_a(
                thing, other_thing) or lexicon.is_a(other_thing, thing)
            if same_thing and name.lower() != other_name.lower():
                return f"Different names for the {other_thing}: {name} vs {other_name}."
    return None


def classify_by_cosine(similarity: float, thresholds: Thresholds = DEFAULT_THRESHOLDS, *,
                       contradiction_band: float | None = 0.70) -> PairVerdict:
    """Cosine bands alone (the app before this module): at or above `duplicate` a
    duplicate, in [contradiction_band, duplicate) a contradiction, then related and
    unrelated. With contradiction_band None, the band is "related"."""
    if similarity >= thresholds.duplicate:
        return PairVerdict("duplicate", similarity, "Nearly the same meaning.", "cosine")
    if contradiction_band is not None and similarity >= contradiction_band:
        return PairVerdict("contradiction", 0.5, "Close but not the same.", "cosine")
    if similarity >= thresholds.related:
        return PairVerdict("related", similarity, "About a similar subject.", "cosine")
    return PairVerdict("unrelated", 1 - similarity, "About different things.", "cosine")


def classify_by_cues(a: str, b: str) -> PairVerdict:
    """Words only, no cosine: a cue makes a contradiction; most stems shared, a duplicate;
    some shared, related."""
    found = cues(a, b)
    if found.contradiction:
        return PairVerdict("contradiction", CUE_CONFIDENCE, found.contradiction, "cues")
    if found.same_values or found.overlap >= 0.6:
        return PairVerdict("duplicate", found.overlap, "Same content words.", "cues")
    if found.overlap > 0:
        return PairVerdict("related", found.overlap, "Some content words shared.", "cues")
    return PairVerdict("unrelated", 0.5, "No content words shared.", "cues")


# -- the model judge -----------------------------------------------------------------------
# The chat model asked whether two statements contradict: a yes or no, with a confidence
# and a reason the review shows. Few-shot examples: general, none from an evaluation file.
JUDGE_PROMPT = FewShotPrompt(
    "You check a personal memory store for contradictions. Two statements contradict when "
    "both cannot be true at the same time (different values for the same thing, or one "
    "denies the other). Statements that say the same thing in other words, or talk about "
    "different things, do not contradict.",
    tuple((f"A: {a}\nB: {b}", json.dumps(verdict)) for a, b, verdict in (
        ("I drink coffee every morning.", "Every morning I have a coffee.",
         {"contradicts": False, "confidence": 0.9, "explanation": "Both say the same thing."}),
        ("My brother lives in Leeds.", "My brother lives in York.",
         {"contradicts": True, "confidence": 0.9,
          "explanation": "They give different cities for where the brother lives."}),
    )))

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "contradicts": {"type": "boolean"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "explanation": {"type": "string", "maxLength": 160},
    },
    "required": ["contradicts", "confidence", "explanation"],
}


class ContradictionJudge:
    """The chat model as a judge of one pair, under JUDGE_SCHEMA. The chat asks it only
    with the contradiction_model_judge setting, and only about the pairs the words leave
    open (`reconsider`); pair_eval measures it the same way."""

    def __init__(self, engine: Engine, max_tokens: int = 80):
        self.engine = engine
        self.max_tokens = max_tokens

    @staticmethod
    def messages(a: str, b: str) -> list[dict]:
        return JUDGE_PROMPT.messages(f"A: {a}\nB: {b}")

    def judge(self, a: str, b: str, stop: threading.Event | None = None) -> PairVerdict:
        """A contradiction when the model says so; otherwise "related" (a yes/no judge
        names no finer label), of confidence 0 when its answer was unusable."""
        job = self.engine.submit(GenerationRequest(
            self.messages(a, b), max_tokens=self.max_tokens, json_schema=JUDGE_SCHEMA,
            purpose="judge", pinned=JUDGE_PROMPT.pinned), stop)
        try:
            data = json.loads(job.text())
            contradicts, confidence = bool(data["contradicts"]), float(data["confidence"])
            explanation = str(data["explanation"])[:160]
        except (ValueError, KeyError, TypeError):
            return PairVerdict("related", 0.0, "The model gave no usable verdict.", "model")
        return PairVerdict("contradiction" if contradicts else "related", confidence,
                           explanation, "model")


def reconsider(verdict: PairVerdict, similarity: float, judge: Callable[[], PairVerdict],
               thresholds: Thresholds = DEFAULT_THRESHOLDS) -> PairVerdict:
    """`verdict` (classify's), or the judge's contradiction for a pair the words leave
    open: close (at or above the contradiction threshold) and neither a contradiction nor
    a duplicate, as the chat's contradiction candidates are. `judge` is called only then:
    it may add a contradiction, never remove one the cues found nor split a duplicate."""
    if verdict.label in ("contradiction", "duplicate") or \
            similarity < thresholds.substitution_contradiction:
        return verdict
    judged = judge()
    return judged if judged.contradicts else verdict


def classify_with_model(a: str, b: str, similarity: float,
                        judge: Callable[[str, str], PairVerdict],
                        thresholds: Thresholds = DEFAULT_THRESHOLDS) -> PairVerdict:
    """cues+cosine, then `judge` (e.g. ContradictionJudge.judge) where `reconsider` asks."""
    return reconsider(classify(a, b, similarity, thresholds), similarity,
                      lambda: judge(a, b), thresholds)
