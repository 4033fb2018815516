"""Telling a duplicate from a contradiction: what two memories are to each other.

Cosine similarity (MiniLM) alone cannot do it: "My shoe size is 42." and "My shoe size is
39." score 0.90 — above the duplicate threshold — while true rewordings score 0.64–0.85.
The decision here (`classify`, the default: "cues+cosine") reads the words first:

1. A contradiction cue, in two sentences that otherwise say the same thing about the same
   thing (most of their content words, stemmed, are shared), makes a contradiction:
   - different values in the same slot: numbers (digits, number words, ordinals), years,
     dates (months, weekdays), colours, compass sides, names (capitalised words) — but a
     value said of the past ("I lived in Leeds", "I used to…") holds beside one of now;
   - opposite polarity: a negation on one side only ("not", "never", "n't", "no",
     "without", "stopped doing", "gave up", and verbs that negate, such as "skip"), where
     words of liking and disliking flip the sign too — so "I don't like X", "I can't stand
     X" and "I hate X" agree. The denial must deny a word the other sentence says: "I
     can't tell red from green" does not deny "I have red-green colour blindness";
   - opposite words from a small, general list of antonyms (short/long, cheap/expensive…);
     a denied one is read as its opposite ("never late" is "early").
   These read the words as written. Hard rule: a pair with a contradiction cue is never a
   duplicate, whatever its cosine.
2. A contradiction that needs to know what words mean, at a lower confidence (for
   review), read through WordNet (lumara_web.lexicon):
   - a denied kind against one of its kinds or parts ("I'm not on any medication" / "I
     take ibuprofen"; "I've never been to Asia" / "… backpacking around Vietnam");
   - opposite feelings about the same thing ("Loud bars give me headaches" / "I relax
     best in loud bars"): pains and symptoms (WordNet), a short list of good and bad
     words, dislikes; a liking is no such feeling;
   - a cue of 1. found only once words of one meaning are read as one ("Our wedding is on
     9 May" / "We married on 21 October"), at or above `contradiction_cue`;
   - one-value slots: one person's two different jobs, each said to be a job ("I work
     full-time as a nurse" / "I'm a full-time pilot"; not a part-time, second or past
     one), and "our only boat is a canoe" against another kind of boat ("a dinghy").
   - a word whose WordNet definition denies kinds of thing ("vegetarian": "eats no meat
     or fish") against one of them ("Jonas loves steak"), of the same person.
   A denied kind also meets a word WordNet does not know that is taken or used ("I'm on
   no medication" / "I take levothyroxine").
3. A pair that swaps one or two words after a shared start ("I prefer aisle seats" /
   "I prefer window seats") is never a duplicate: at or above the contradiction threshold
   a contradiction of low confidence, for review; below, related (only knowledge of the
   world tells a one-value slot from a many-value one; the cosine is the hint). A swap of
   synonyms is no swap.
4. Otherwise cosine decides, helped by the words, where a word of one sentence that shares
   its usual sense with one of the other counts as the same word ("cilantro" /
   "coriander", "chit-chat" / "small talk"), and where both affirm or both deny, so does a
   near kind ("high school" / "secondary school"), and a season the month it holds ("this
   fall" / "this September"): at or above `duplicate` it is a duplicate; at
   or above `reworded_duplicate` it is a duplicate too when the sentences state the same
   values (the same date, number or name) or share most content words of both (one that
   adds facts to the other is no duplicate); at or above `contradiction_cue`, when they
   share nearly all of them (MiniLM scores synonyms low); at or above `related` it is
   related; below, unrelated.

Measured by lumara_bench.pair_eval (figures in docs/QUALITY.md). The chat model
(SmolLM2-135M) is measured as a judge too (ContradictionJudge: `model`,
`cues+cosine+model`, asked as the chat asks it): it finds almost none of the
contradictions, so the default does not call it (the contradiction_model_judge setting),
and POST /api/memories never waits on a model. Contradictions that need knowledge WordNet
does not hold ("I am a vegan." / "I eat eggs every morning.": WordNet files eggs under no
animal product) are still missed.

The opposites and words of feeling below are short general lists. What is a kind of what (a
labrador is a dog) and which words share a sense come from WordNet (lumara_web.lexicon);
kinds serve renamings too: "Our dog is called Nala" updates "We got a black labrador called
Juno". Stemming is snowballstemmer's English (Porter 2) stemmer.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable

from .. import lexicon
from ..inference.engine import Engine, GenerationRequest
from ..inference.few_shot import FewShotPrompt
from ..text import STOP_WORDS, names_in, stem, tokens

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
                     "currently now always anymore".split())
# Prepositions the stop words lack; like "under" and "in", they say where, not what:
# "beneath the stairs" is "under the stairs".
_PREPOSITIONS = frozenset("beneath underneath beside behind between among amongst upon "
                          "within across along toward towards".split())
# Seasons and the months they hold (the northern hemisphere's, by the meteorologists'
# count): "this fall" says "this September" in other words; "this spring" does not.
_SEASONS = {"spring": ("march", "april", "may"), "summer": ("june", "july", "august"),
            "autumn": ("september", "october", "november"),
            "fall": ("september", "october", "november"),
            "winter": ("december", "january", "february")}
# Words before a season that make it one ("*this* fall", "*in* the spring").
_SEASON_MARKERS = frozenset("this last next in the every each early late during".split())
_NEGATIONS = frozenset("not no never none nothing nobody nowhere neither nor cannot "
                       "can't don't doesn't didn't isn't aren't wasn't weren't won't "
                       "wouldn't shouldn't couldn't haven't hasn't hadn't unable incapable "
                       "without".split())
# Verbs that deny their object: "I skip breakfast" says "I don't eat breakfast".
_NEGATING_VERBS = frozenset("skip skips skipped avoid avoids avoided lack lacks lacked "
                            "quit quits quitted quitting refuse refuses refused".split())
# Liking and disliking: a sign, combined with negation ("don't like" = "dislike").
_LIKING = frozenset("love loves loved like likes liked enjoy enjoys enjoyed adore adores "
                    "fond".split())
_DISLIKING = frozenset("hate hates hated dislike dislikes disliked detest detests loathe "
                       "loathes".split())
# Putting up with: denied, a dislike ("I can't stand coriander" = "I hate coriander").
_TOLERATING = frozenset("stand bear abide stomach tolerate".split())
# Verbs that end what follows them, in "I stopped taking…", "I gave up…" (_ends_what_follows).
_STOPPING = frozenset("stop stops stopped stopping".split())
_GIVING = frozenset("give gives gave given giving".split())
# "I'm used to noise" is no "used to" of the past: the habit goes on; nor are "I am
# married" or "I have lived here for years" said of the past only.
_BE_OR_GET = frozenset("am is are was were be been being get gets got getting i'm we're "
                       "you're they're he's she's have has i've we've".split())
# Past forms among the stop words ("I was a nurse"); others come from WordNet's verbs.
_PAST_FORMS = frozenset("was were did had".split())
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



_OPPOSITE_STEMS = tuple((stem(left), stem(right)) for left, right in _OPPOSITES)
_LIKING_STEMS = frozenset(stem(word) for word in _LIKING)
_DISLIKING_STEMS = frozenset(stem(word) for word in _DISLIKING)
LIKING_STEM = stem("like")
# Words with a single opposite in the list, for a denial read as the opposite: "never
# late" is "early"; "not short" (tall? long?) stays a denial.
_SOLE_OPPOSITE = {word: (other, other_word)
                  for (one, two), words in zip(_OPPOSITE_STEMS, _OPPOSITES)
                  for word, other, other_word in ((one, two, words[1]), (two, one, words[0]))
                  if sum(word in pair for pair in _OPPOSITE_STEMS) == 1}


def _value(token: str, position: int, names: set[str]) -> tuple[str, str] | None:
    """(kind, normalized value) when `token` fills a value slot, else None."""
    lower = token.lower()
    digits = re.fullmatch(r"(\d+(?:[.,:]\d+)*)(st|nd|rd|th|am|pm|%)?", lower)
    if digits:
        number = digits.group(1)
        if re.fullmatch(r"\d{1,3}(,\d{3})+", number):  # 15,000 is one number
            number = number.replace(",", "")
        # A year is not a count: "I gave up cigarettes in 2017" / "I still smoke ten a day"
        # state no two values for one slot.
        if re.fullmatch(r"(19|20)\d\d", lower):
            return "year", number
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
class Word:
    """One token of a sentence, as the cues read it."""
    text: str  # lower case, as written
    stem: str  # what comparisons use: its stem, or a synonym's in the other sentence
    # "content", "value", "liking" (a word of liking or disliking), "negation", or "other"
    # (stop words, fillers, titles: they say nothing about what the sentence is about).
    kind: str
    negates: bool = False  # a negation, a dislike, or a verb that denies ("skip")
    value: tuple[str, str] | None = None  # (kind, normalized value) for a value
    past: bool = False  # a past form ("lived", "was", "used to"): held once, maybe no longer


@dataclass(frozen=True)
class Reading:
    """What the cues need from one sentence."""
    frame: frozenset[str]  # stems of the content words that are not values
    values: frozenset[tuple[str, str]]  # (kind, value)
    negative: bool  # the statement's polarity, after negations and dislikes
    polarity_words: tuple[str, ...]  # the words that set it ("not", "love", "hate"…)
    stems: frozenset[str]  # every content stem, values included
    sequence: tuple[str, ...]  # the same, in sentence order
    # What each negation denies first: the stem of the content word right after it ("never
    # *smoked*", "I stopped *taking* any medication").
    negated: frozenset[str] = frozenset()
    words: tuple[Word, ...] = ()
    # The stems of every content word after a negation: "I'm colour-blind and can't tell
    # red from green" denies {tell}, nothing "I have red-green colour blindness" says.
    denied_words: frozenset[str] = frozenset()
    past: bool = False  # says what held once ("I lived in Leeds", "I used to live there")


def read(text: str, names: set[str]) -> Reading:
    return reading(words_of(text, names))


def words_of(text: str, names: set[str]) -> list[Word]:
    """The sentence's tokens, each with its role; "not" before a word with one opposite
    is read as that opposite ("never late": early)."""
    return list(_words_of(text, frozenset(names)))


# Remembered per sentence: a stored memory is read again for every memory compared with it
# (an import of 1,000 read the same sentences ~36,000 times).
@lru_cache(maxsize=4096)
def _words_of(text: str, names: frozenset[str]) -> tuple[Word, ...]:
    found: list[Word] = []
    lowers = [token.lower() for token in tokens(text)]
    for position, token in enumerate(tokens(text)):
        lower = lowers[position]
        before = lowers[position - 1] if position else ""
        after = lowers[position + 1] if position + 1 < len(lowers) else ""
        # Said of the past: "I lived in Leeds", "I was a nurse", "I used to live in Leeds"
        # (but "I am married", "I have lived here for years" hold now).
        past = lower in _PAST_FORMS or lower.split("n'")[0] in _PAST_FORMS or (
            before not in _BE_OR_GET and (lexicon.is_past_tense(lower) or lower == "used"
                                          and after == "to"))
        if lower in _NEGATIONS or lower.endswith("n't") or \
                _ends_what_follows(lower, before, after):
            found.append(Word(lower, lower, "negation", negates=True, past=past))
            continue
        if lower in _TITLES or lower == "longer" and before == "no":  # "no longer"
            found.append(Word(lower, lower, "other", past=past))
            continue
        if lower in _TOLERATING and found and found[-1].kind == "negation":
            found.append(Word(lower, LIKING_STEM, "liking"))  # "can't stand": a dislike
            continue
        value = _value(token, position, names)
        if value is not None:
            found.append(Word(lower, value[1], "value", value=value))
            continue
        if lower in STOP_WORDS or lower in _FILLERS or lower in _PREPOSITIONS or \
                len(lower) < 2 and not lower.isdigit() \
                or lower.split("'")[0] in STOP_WORDS or lower == "used" and past:  # "I've"
            found.append(Word(lower, lower, "other", past=past))
            continue
        word = stem(lower)
        if word in _LIKING_STEMS or word in _DISLIKING_STEMS:
            # One stem for every word of liking: "I love X" and "I like X" say the same.
            found.append(Word(lower, LIKING_STEM, "liking", word in _DISLIKING_STEMS, past=past))
            continue
        found.append(Word(lower, word, "content", lower in _NEGATING_VERBS, past=past))
    return _opposites_of_denials(found)


def _ends_what_follows(word: str, before: str, after: str) -> bool:
    """A verb that says what follows holds no more: "I *gave up* cigarettes", "I *stopped*
    taking it"."""
    return (word in _STOPPING and (after.endswith("ing") or after in ("any", "all"))
            or word in _GIVING and after == "up")


def _opposites_of_denials(words: list[Word]) -> list[Word]:
    for index, word in enumerate(words):
        if word.kind != "negation" or word.text not in _NEGATIONS and \
                not word.text.endswith("n't"):
            continue
        at = next((at for at in range(index + 1, len(words)) if words[at].kind != "other"),
                  None)
        if at is not None and words[at].kind == "content" and words[at].stem in _SOLE_OPPOSITE:
            words[index] = replace(word, kind="other", negates=False)
            opposite, opposite_word = _SOLE_OPPOSITE[words[at].stem]
            words[at] = replace(words[at], stem=opposite, text=opposite_word)
    return words


def reading(words: list[Word]) -> Reading:
    frame, values, stems, sequence, negated, denied_words = set(), set(), set(), [], set(), set()
    negations, polarity_words = 0, []
    for index, word in enumerate(words):
        if negations and word.kind == "content":
            denied_words.add(word.stem)
        if word.negates:
            negations += 1
            polarity_words.append(word.text)
            following = next((other for other in words[index + 1:]
                              if other.kind not in ("other", "negation")), None)
            if following is not None and following.kind in ("content", "value"):
                negated.add(following.stem)
        if word.kind in ("other", "negation"):
            continue
        if word.kind == "value":
            values.add(word.value)
        elif word.kind == "liking":
            if not word.negates:
                polarity_words.append(word.text)
        else:
            frame.add(word.stem)
        stems.add(word.stem)
        sequence.append(word.stem)
    return Reading(frozenset(frame), frozenset(values), negations % 2 == 1,
                   tuple(polarity_words), frozenset(stems), tuple(sequence),
                   frozenset(negated), tuple(words), frozenset(denied_words),
                   any(word.past for word in words))


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
    # Why the pair contradicts by what the words mean rather than by their form: a denial of
    # a kind of thing against one of its kinds ("I'm not on any medication" / "I take
    # ibuprofen"), or opposite feelings about one thing ("Loud bars give me headaches" /
    # "I relax best in loud bars"). Less certain than `contradiction`: for review.
    knowledge: str | None = None
    # Both affirm, or both deny, or the one denial denies nothing the other says ("I can't
    # tell red from green" / "I have red-green colour blindness"); else no sure rewording.
    same_polarity: bool = True
    # A clash of the contradiction cues found only once words of one meaning are read as
    # one ("Our wedding is on 12 June" / "We got married on 3 August"): WordNet may match
    # a rare sense, so it is less sure than `contradiction`, for review.
    reworded_contradiction: str | None = None


def cues(a: str, b: str) -> Cues:
    """The pair's cues. The contradiction cues read the words as written: a clash of the
    same words is sure, one found through a synonym (WordNet may match a rare sense) is
    not. The rest read each word of `b` that is a synonym of one of `a` as `a` says it."""
    names = names_in(a, b)
    texts = (a, b)
    a, b = _in_usual_words(a), _in_usual_words(b)
    written = words_of(a, names), words_of(b, names)
    as_written = tuple(map(reading, written))
    # A kind for its near kind ("high school", "secondary school") only where both sides
    # affirm or both deny: "I don't drink alcohol" / "I drink wine" denies a kind.
    left, right = map(reading, align(*written, kinds=as_written[0].negative
                                     == as_written[1].negative))
    same_values = bool(left.values) and left.values == right.values
    word_overlap = overlap(left.stems, right.stems)
    contradiction = _contradiction(*as_written, overlap(as_written[0].frame,
                                                        as_written[1].frame), texts)
    return Cues(contradiction,
                same_values,
                left.values != right.values, word_overlap,
                mutual_overlap(left.stems, right.stems),
                # A swap of synonyms is none ("cilantro" / "coriander"), and neither is a
                # rewording with synonyms that leaves one other word swapped: "My best friend
                # lives in Oslo" / "My closest friend is based in Oslo".
                _substitution(left, right) and _substitution(*as_written),
                _denied_kind(left, right) or _opposite_feelings(left, right)
                or _two_roles(a, b) or _two_only_ones(left, right)
                or _denied_by_definition(left, right),
                left.negative == right.negative or not _denies_what_is_said(left, right),
                None if contradiction else _contradiction(
                    left, right, overlap(left.frame, right.frame), texts))


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


def _contradiction(left: Reading, right: Reading, shared_frame: float,
                   texts: tuple[str, str]) -> str | None:
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
    # A value of the past holds beside one of now ("I lived in Leeds" / "I live in York"),
    # unless it is a date, which stays ("We got married on 3 August" / "Our anniversary is
    # 12 June").
    if kinds and same_slot and not many_valued and (
            left.past == right.past or kinds & {"date", "year"}):
        values = [_values_as_written([value for kind, value in side if kind in kinds], text)
                  for side, text in ((only_left, texts[0]), (only_right, texts[1]))]
        return _different_values(*(_differing_words(*texts) or values),
                                 _shared_subject(*texts))
    for words, (one, other) in zip(_OPPOSITES, _OPPOSITE_STEMS):
        for (this, that), shown in (((one, other), words), ((other, one), words[::-1])):
            if this in left.frame - right.frame and that in right.frame - left.frame and \
                    _same_subject(left.frame - {this}, right.frame - {that}):
                return _different_values(shown[0], shown[1], _shared_subject(*texts))
    if shared_frame < FRAME_OVERLAP:
        return None
    if left.negative != right.negative and _denies_what_is_said(left, right):
        shown = [" ".join(side.polarity_words) for side in (left, right)]
        if all(shown):  # "like" / "hate"
            return _different_values(f"“{shown[0]}”", f"“{shown[1]}”", _shared_subject(*texts))
        return f"One denies what the other says (“{shown[0] or shown[1]}”)."
    return None


def _denies_what_is_said(left: Reading, right: Reading) -> bool:
    """Does the denying sentence deny a word the other says, or deny with no word after
    ("I don't")? "I can't *tell* red from green" denies nothing of "I have red-green
    colour blindness"."""
    denying, saying = (left, right) if left.negative else (right, left)
    return not denying.denied_words or bool(denying.denied_words & saying.stems)


def _same_subject(left: frozenset[str], right: frozenset[str]) -> bool:
    """What remains of two sentences once the words that differ on purpose are set aside
    is the same, or mostly the same."""
    return left == right or overlap(left, right) >= FRAME_OVERLAP


def _different_values(one: str, other: str, subject: str) -> str:
    """The reason two memories clash, as a person would put it: "One says 42, the other
    39, about your shoe size."."""
    about = f", about {subject}" if subject else ""
    return f"One says {one}, the other {other}{about}."


def _differing_words(a: str, b: str) -> tuple[str, str] | None:
    """The one stretch of words where `a` and `b` differ, each as written ("XK12 ABC" /
    "AB34 CDE"), or None where they differ in more places than one."""
    words = [re.findall(r"[\w'’:.,-]*\w", text) for text in (a, b)]
    matcher = difflib.SequenceMatcher(a=[word.lower() for word in words[0]],
                                      b=[word.lower() for word in words[1]], autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if len(changes) != 1 or changes[0][0] != "replace":
        return None
    _, start_a, end_a, start_b, end_b = changes[0]
    if max(end_a - start_a, end_b - start_b) > _LONGEST_SHOWN_VALUE:
        return None
    return " ".join(words[0][start_a:end_a]), " ".join(words[1][start_b:end_b])


# Words of a differing stretch shown as the value: a licence plate, a date with its month.
_LONGEST_SHOWN_VALUE = 4


def _values_as_written(values: list[str], text: str) -> str:
    """`values` (lower case) in the order and case `text` writes them: "9 May"."""
    found = sorted((match.start(), match.group(0)) for match in (
        re.search(rf"\b{re.escape(value)}\b", text, re.IGNORECASE) for value in values)
        if match)
    return " ".join(written for _, written in found) or ", ".join(sorted(values))


def _shared_subject(a: str, b: str) -> str:
    """What both sentences say is the user's ("your licence plate" for "My licence plate is
    …"), or "" where they do not name it alike."""
    found = [_POSSESSION.search(text) for text in (a, b)]
    if all(found) and found[0].group(1).lower() == found[1].group(1).lower():
        return "your " + found[0].group(1)
    return ""


# "my licence plate is", "our landlord's", "my rent costs": a thing of the user's, up to
# three words, before the verb that gives its value.
_POSSESSION = re.compile(r"\b(?:my|our)\s+([A-Za-z-]+(?:\s+[A-Za-z-]+){0,2}?)"
                         r"(?='s\b|\s+(?:is|are|was|were|has|have|had|costs?|starts?|"
                         r"ends?|lives?|works?|runs?)\b)", re.IGNORECASE)


# -- what the words mean: synonyms, kinds, feelings (WordNet, through lexicon) ------------
# WordNet's compounds used here are at most three words long ("vacuum cleaner").
_LONGEST_COMPOUND = 3


@dataclass(frozen=True)
class _Unit:
    """A content word, or a compound WordNet knows ("small talk"), at words[start:end]."""
    start: int
    end: int
    lemma: str  # as WordNet spells it


def _units(words: list[Word]) -> list[_Unit]:
    """The sentence's content words and compounds, longest first."""
    return list(_units_of(tuple(words)))


@lru_cache(maxsize=4096)
def _units_of(words: tuple[Word, ...]) -> tuple[_Unit, ...]:
    found = []
    for start, word in enumerate(words):
        for end in range(min(len(words), start + _LONGEST_COMPOUND), start + 1, -1):
            span = words[start:end]
            texts = [part.text for part in span]
            if span[0].kind != "content" or span[-1].kind != "content" or \
                    any(part.kind not in ("content", "other") for part in span) or \
                    not all(text.isalpha() for text in texts):
                continue
            # "small talk", "chit-chat", "near-sighted" (WordNet: "nearsighted")
            forms = ["_".join(texts), "-".join(texts)] + (["".join(texts)]
                                                          if len(texts) == 2 else [])
            lemma = next((form for form in forms if lexicon.knows_any(form)), None)
            if lemma:
                found.append(_Unit(start, end, lemma))
        if word.kind == "content":
            found.append(_Unit(start, start + 1, word.text))
    return tuple(sorted(found, key=lambda unit: unit.start - unit.end))


def align(left: list[Word], right: list[Word], *,
          kinds: bool = False) -> tuple[list[Word], list[Word]]:
    """The two sentences, with each word or compound of `right` that shares a sense with
    one of `left` given `left`'s stem: "I hate cilantro" read against "I can't stand
    coriander" is "I hate coriander"; "chit-chat" against "small talk", one word. Only
    words the other sentence does not already share are matched, each once. With `kinds`,
    a word and a near kind of it are one too ("high school", "secondary school"; not
    "violin" and "cello", two kinds of one thing); a season takes the month it holds."""
    left, right = list(left), list(right)
    left_units = _units(left)
    taken_left: set[int] = set()
    taken_right: set[int] = set()
    for unit in _units(right):
        span = set(range(unit.start, unit.end))
        if span & taken_right or _stems(right, unit) <= _all_stems(left):
            continue
        for other in left_units:
            other_span = set(range(other.start, other.end))
            if other_span & taken_left or _stems(left, other) <= _all_stems(right) or \
                    not _same_meaning(unit.lemma, other.lemma, kinds):
                continue
            shared = left[other.start].stem if len(span) == len(other_span) == 1 \
                else other.lemma
            _rename(left, other, shared)
            _rename(right, unit, shared)
            taken_left |= other_span
            taken_right |= span
            break
    if kinds:
        _months_for_seasons(left, right)
        _months_for_seasons(right, left)
    return left, right


def _same_meaning(word: str, other: str, kinds: bool) -> bool:
    """Synonyms, or with `kinds`, one a kind of the other, one link apart."""
    return lexicon.synonyms(word, other) or kinds and (
        lexicon.is_near_kind(word, other, 1) or lexicon.is_near_kind(other, word, 1))


def _months_for_seasons(words: list[Word], other: list[Word]) -> None:
    """Each season in `words` that holds a month `other` names, and `words` does not, read
    as that month ("this fall" against "this September")."""
    months = {word.value for word in other if word.value and word.value[0] == "date"} - {
        word.value for word in words if word.value}
    for index, word in enumerate(words):
        if word.kind != "content" or word.text not in _SEASONS or not index or \
                words[index - 1].text not in _SEASON_MARKERS:
            continue
        month = next((value for value in months if value[1] in _SEASONS[word.text]), None)
        if month is not None:
            words[index] = replace(word, stem=month[1], kind="value", value=month)
            months.discard(month)


def _stems(words: list[Word], unit: _Unit) -> set[str]:
    return {word.stem for word in words[unit.start:unit.end] if word.kind == "content"}


def _all_stems(words: list[Word]) -> set[str]:
    return {word.stem for word in words if word.kind != "other"}


def _rename(words: list[Word], unit: _Unit, shared: str) -> None:
    """A unit read as one word: its first word takes `shared`, the rest say nothing."""
    words[unit.start] = replace(words[unit.start], stem=shared)
    for index in range(unit.start + 1, unit.end):
        words[index] = replace(words[index], kind="other")


# What "I had steak" does to steak: it ate it, drank it, took it ("have" is a stop word).
_HAVING = frozenset("have has had having i've we've".split())


def _denied_kind(left: Reading, right: Reading) -> str | None:
    """One sentence denies a kind of thing, or a place ("I'm not on any medication", "I
    have never been to Asia"); the other, affirmative, names one of its kinds or parts ("I
    take ibuprofen", "I spent May in Vietnam"), and says everything else the denial says
    (a kind of it will do: wine is a drink; "had" does for the verb denied) about no one
    else. A word WordNet does not know ("levothyroxine") may be one of "any" kind after
    the verb denied ("I stopped taking any medication" / "I take levothyroxine")."""
    for denying, saying in ((left, right), (right, left)):
        if not denying.negative or saying.negative:
            continue
        meaningful = [at for at, word in enumerate(denying.words)
                      if word.kind in ("content", "value")]
        things = [word for word in saying.words if word.kind in ("content", "value")]
        for kind_at, kind_end, kind in _kinds(denying.words, meaningful):
            for thing_at in (at for at, word in enumerate(saying.words)
                             if word.kind in ("content", "value")):
                thing = saying.words[thing_at]
                if thing.stem == denying.words[kind_at].stem and kind_end == kind_at + 1:
                    continue
                if lexicon.is_in(thing.text, kind, usually=True):
                    how = "which is one"
                elif _any_of(denying.words, kind_at) and \
                        _object_of_denied_verb(saying.words, thing_at, denying.negated,
                                               denying.words[kind_at].stem):
                    how = "which may be one"
                else:
                    continue
                had = _had(saying.words, thing_at)
                rest = (denying.words[at] for at in meaningful if not kind_at <= at < kind_end)
                if all(word.stem in denying.negated and had or any(
                        word.stem == other.stem or lexicon.is_a(other.text, word.text)
                        or lexicon.is_a(other.text, word.stem) for other in things)
                       for word in rest) and not _someone_else(saying, denying, thing):
                    shown = kind.replace("_", " ")
                    return f"One denies any {shown}; the other names {thing.text}, {how}."
    return None


def _kinds(words: tuple[Word, ...], meaningful: list[int]) -> list[tuple[int, int, str]]:
    """(start, end, lemma) of each word that may name a kind, and of each two-word name
    WordNet knows ("South America")."""
    found = [(at, at + 1, words[at].text) for at in meaningful]
    found += [(at, at + 2, f"{words[at].text}_{words[at + 1].text}") for at in meaningful
              if at + 1 in meaningful and lexicon.knows(f"{words[at].text}_{words[at + 1].text}")]
    return tuple(found)


def _any_of(words: tuple[Word, ...], at: int) -> bool:
    """Is words[at] denied as a whole kind: "any medication", "no pets"?"""
    return at > 0 and words[at - 1].text in ("any", "no")


def _object_of_denied_verb(words: tuple[Word, ...], at: int, denied: frozenset[str],
                           kind: str = "") -> bool:
    """Is words[at], a word WordNet does not know, the object of a verb in `denied` ("I
    *take* levothyroxine" against "I stopped *taking* any medication"), or, where the
    denial denies the kind itself and no verb ("I'm on no medication"), of a verb of taking
    or using ("I *take* levothyroxine")?"""
    if lexicon.knows_any(words[at].text):
        return False
    before = [word for word in words[:at] if word.kind != "other"]
    return bool(before) and (before[-1].stem in denied or kind in denied
                             and before[-1].stem in _TAKING
                             and not lexicon.knows(words[at].text))


# Verbs of taking or using a thing: "I take X" has X as "I have X" does.
_TAKING = frozenset(stem(word) for word in "take takes took taking use uses using".split())


def _had(words: tuple[Word, ...], at: int) -> bool:
    """Does the sentence say it had words[at] ("I had a steak", "I still have wine")?"""
    return any(word.text in _HAVING for word in words[max(0, at - 3):at])


def _someone_else(saying: Reading, denying: Reading, thing: Word) -> bool:
    """Does `saying` speak of someone `denying` does not name ("my sister", "Marta", "the
    dog")?"""
    return any(word is not thing and word.stem not in denying.stems and (
        any(lexicon.is_a(word.text, kind, usually=True) for kind in ("person", "animal"))
        or word.value is not None and word.value[0] == "name" and not lexicon.knows(word.text))
        for word in saying.words if word.kind in ("content", "value"))


# How a thing makes the user feel: bad ("Loud bars give me headaches": pains and symptoms,
# by WordNet, and the words below; a dislike) or good ("I relax best in loud bars"). General
# words of feeling, none from an evaluation file. A liking is no feeling of this kind: "I
# love cats" and "Cats make me sneeze" can both be true.
_FEELING_BAD = frozenset(stem(word) for word in (
    "exhausting exhausts exhausted drains draining ruins ruined stressful stresses stressed "
    "anxious nervous tiring tires tired annoying annoys irritating irritates bothers "
    "distracts distracting overwhelming overwhelms upsets upsetting hurts sick nauseous "
    "awful terrible miserable unbearable unpleasant uncomfortable badly worse allergic "
    "allergy problem problems trouble awake").split())  # "awake": "keeps me awake at night"
_FEELING_GOOD = frozenset(stem(word) for word in (
    "relax relaxes relaxing relaxed calm calms calming best happiest happy thrive thrives "
    "focus concentrate productive energised energized comfortable cosy cozy pleasant "
    "favourite favorite prefer prefers better well").split())
_BAD_KINDS = ("pain", "symptom")  # headache, migraine, rash, nausea…
# Bad only when denied, good then: "I don't mind crowds" (a mind is no feeling).
_BAD_WHEN_DENIED = frozenset(stem(word) for word in "mind minds".split())
# Degrees that say how good a thing is when they end a phrase ("I work *best* in loud
# offices") but name a kind of thing before a noun ("my *best* friend").
_DEGREES = frozenset(stem(word) for word in "best better worse worst".split())
# A bad thing lessened is good: "Yoga eases my back pain".
_LESSENING_STEMS = frozenset(stem(word) for word in _LESSENING + (
    "relieves", "cures", "soothes", "prevents", "helps"))


def _feeling(reading: Reading) -> tuple[int, list[Word]]:
    """(+1 good, -1 bad, or 0 for mixed or none; the words that say so) for a sentence. A
    negation right before a feeling turns it ("I can't relax", "with no problems")."""
    words = reading.words
    lessened = any(word.kind == "content" and word.stem in _LESSENING_STEMS for word in words)
    signs, said = [], []
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else None
        if word.kind == "liking":
            sign = -1 if word.negates else 1
        elif word.kind != "content" or word.stem in _DEGREES and following is not None \
                and following.kind == "content":
            continue
        elif word.stem in _FEELING_GOOD:
            sign = 1
        elif word.stem in _BAD_WHEN_DENIED:
            if not _denied(words, index):
                continue
            sign = -1
        elif word.stem in _FEELING_BAD or any(lexicon.is_a(word.text, kind, usually=True)
                                             for kind in _BAD_KINDS):
            sign = 1 if lessened else -1
        else:
            continue
        if _denied(words, index):
            sign = -sign
        if word.kind == "liking" and sign > 0:
            continue
        signs.append(sign)
        said.append(word)
    if not signs or min(signs) != max(signs):
        return 0, said
    return signs[0], said


def _denied(words: tuple[Word, ...], index: int) -> bool:
    """Is words[index] denied: a negation before it, with only stop words or verbs that
    carry a feeling between ("I don't get headaches")?"""
    for word in reversed(words[:index]):
        if word.kind == "negation":
            return True
        if word.kind != "other" and not (word.kind == "content" and word.stem in _CARRIERS):
            return False
    return False


# Verbs that only carry a feeling: "X *gives* me headaches", "X *makes* me anxious".
_CARRIERS = frozenset(stem(word) for word in "give gives make makes get gets find finds "
                      "feel feels keep keeps leave leaves".split())


def _opposite_feelings(left: Reading, right: Reading) -> str | None:
    """Opposite feelings about the same thing: what remains of each sentence once the
    words of feeling are set aside is mostly shared."""
    (one, one_words), (other, other_words) = _feeling(left), _feeling(right)
    if not one or not other or one == other:
        return None
    subject = left.frame - {word.stem for word in one_words} - _CARRIERS
    other_subject = right.frame - {word.stem for word in other_words} - _CARRIERS
    if overlap(subject, other_subject) < FRAME_OVERLAP or \
            (left.values | right.values) and left.values != right.values:
        return None
    shown = (", ".join(f"'{word.text}'" for word in words)
             for words in (one_words, other_words))
    return f"Opposite feelings about the same thing: {next(shown)} vs {next(shown)}."


# -- one-value slots: a job held full-time, the only one of a thing ------------------------
# What someone is, or works as: "I'm a full-time nurse", "My aunt works as a pilot".
_ROLE = re.compile(r"^(?P<subject>.*?)(?:\b(?:am|is|are)\s+|'m\s+|'s\s+|'re\s+|"
                   r"\bworks?\s+(?:full[- ]time\s+)?as\s+)(?:now\s+)?(?:an?\s+)"
                   r"(?P<role>[\w\s-]+)", re.I)
# Words that make a role a job: "I work as…", "full-time", "for a living".
_WORK = re.compile(r"\b(?:works?\s+(?:full[- ]time\s+)?as|full[- ]time|for a living|by "
                   r"(?:trade|profession)|job)\b", re.I)
# Kinds of person that are jobs by WordNet (most are; some, "accountant", only persons).
_WORKERS = ("worker", "professional", "paraprofessional")
# A second job, or one no longer held, holds beside the first.
_MORE_THAN_ONE = re.compile(r"\b(?:part[- ]time|also|too|as well|second|side|another|"
                            r"retired|former|formerly|used to|was|were|worked)\b", re.I)


def _role(text: str) -> tuple[str, str, bool] | None:
    """(subject, the role's head noun, is it said to be a job) of "… is a [words] ROLE",
    or None. The head is the last word of the phrase that names a kind of person."""
    match = _ROLE.match(text.strip())
    if match is None or _MORE_THAN_ONE.search(text):
        return None
    words = []
    for word in tokens(match.group("role")):
        if word.lower() in STOP_WORDS:
            break
        words.append(word.lower())
    head = next((word for word in reversed(words)
                 if lexicon.is_a(word, "person", usually=True)), None)
    if head is None:
        return None
    subject = " ".join(word.lower().removesuffix("'m") for word in tokens(match.group("subject"))
                       if word.lower() not in ("i'm", "i"))
    return subject, head, bool(_WORK.search(text))


def _two_roles(a: str, b: str) -> str | None:
    """One person holds two different jobs, each as their one job ("I work full-time as a
    nurse" / "I'm a full-time pilot"): both sentences say it is a job, or both jobs are
    jobs by WordNet. A role that is a kind of the other ("surgeon", "doctor"), a second or
    part-time job, or one held once, is no clash."""
    one, other = _role(a), _role(b)
    if one is None or other is None or one[0] != other[0] or not (one[2] or other[2]):
        return None
    first, second = one[1], other[1]
    if stem(first) == stem(second) or lexicon.synonyms(first, second) or \
            lexicon.is_a(first, second) or lexicon.is_a(second, first):
        return None
    if not (one[2] and other[2]) and not all(
            any(lexicon.is_a(role, kind, usually=True) for kind in _WORKERS)
            for role in (first, second)):
        return None
    return f"Two different jobs: {first} vs {second}."


def _two_only_ones(left: Reading, right: Reading) -> str | None:
    """One sentence names its only thing of a kind as one kind of it ("Our only bike is a
    tandem"); the other names another kind of it ("We ride a tricycle"), neither a kind
    of the other, of no one else."""
    for only, other in ((left, right), (right, left)):
        words = [word.text for word in only.words]
        for at, word in enumerate(words[:-1]):
            if word != "only" or only.words[at + 1].kind != "content":
                continue
            kind = words[at + 1]
            named = _kinds_named(only.words, kind, skip=at + 1)
            for that in _kinds_named(other.words, kind):
                if any(this.lemma != that.lemma and not lexicon.is_a(this.lemma, that.lemma)
                       and not lexicon.is_a(that.lemma, this.lemma)
                       and not lexicon.synonyms(this.lemma, that.lemma) for this in named) \
                        and not _someone_else(_without_modifiers(other, that), only,
                                              Word("", "", "content")):
                    shown = next(this.lemma for this in named).replace("_", " ")
                    return f"Only one {kind}: {shown} vs {that.lemma.replace('_', ' ')}."
    return None


def _kinds_named(words: tuple[Word, ...], kind: str, skip: int = -1) -> list[_Unit]:
    """The words and compounds of `words` (but words[skip]) that name a kind of `kind`."""
    return [unit for unit in _units(list(words))
            if unit.start != skip and unit.lemma != kind
            and lexicon.is_a(unit.lemma, kind, usually=True)]


def _without_modifiers(reading: Reading, unit: _Unit) -> Reading:
    """`reading` without `unit` and the two words before it, which say what kind of it it
    is ("a *diesel* estate car": an engine, not Rudolf Diesel)."""
    return replace(reading, words=reading.words[:max(0, unit.start - 2)]
                   + reading.words[unit.end:])


def _denied_by_definition(left: Reading, right: Reading) -> str | None:
    """One sentence calls its subject a word whose definition denies kinds of thing ("I'm
    vegetarian": eats no meat or fish); the other, affirmative, names one of those kinds
    ("I had steak"), and neither speaks of someone the other does not name."""
    for denying, saying in ((left, right), (right, left)):
        if saying.negative or denying.past:
            continue
        for word in denying.words:
            if word.kind != "content":
                continue
            kinds = lexicon.denied_by_definition(word.text)
            if not kinds:
                continue
            for thing in saying.words:
                if thing.kind != "content" or thing.stem == word.stem:
                    continue
                kind = next((kind for kind in kinds
                             if lexicon.is_in(thing.text, kind, usually=True)), None)
                if kind and not _someone_else(saying, denying, thing) and \
                        not _someone_else(denying, saying, word):
                    return (f"'{word.text}' means taking no {kind.replace('_', ' ')}; the "
                            f"other names {thing.text}, which is some.")
    return None


# -- the classifiers (variants measured by pair_eval; `classify` is the default) ---------
# A cue's confidence: specific (precision 1.00 on every measured set) but it reads words,
# not meaning; above the chat's contradiction_judge_confidence (0.5), so it is recorded.
CUE_CONFIDENCE = 0.8
# Share of content stems a rewording in [reworded_duplicate, duplicate) must share: half
# ("I am lactose intolerant." / "I can't digest lactose.").
REWORDED_OVERLAP = 0.5
# Below CUE_CONFIDENCE: a swapped word is a weaker sign than a clashing value or negation.
SUBSTITUTION_CONFIDENCE = 0.6
# What words mean (a kind denied, opposite feelings) is a weaker sign than their form, but
# above the chat's contradiction_judge_confidence (0.5): the pair is offered for review.
KNOWLEDGE_CONFIDENCE = 0.6
# Share of content stems, synonyms matched, of the larger sentence that makes a pair whose
# cosine is only at the contradiction-cue level a duplicate: three of four ("I can't stand
# coriander" / "I hate cilantro": MiniLM knows few synonyms and scores them low).
SYNONYM_OVERLAP = 0.75

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
    if found.reworded_contradiction and similarity >= thresholds.contradiction_cue:
        return PairVerdict("contradiction", KNOWLEDGE_CONFIDENCE,
                           found.reworded_contradiction, "cues")
    if found.knowledge and similarity >= thresholds.related:
        return PairVerdict("contradiction", KNOWLEDGE_CONFIDENCE, found.knowledge, "cues")
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
    if similarity >= thresholds.contradiction_cue and found.same_polarity and \
            found.mutual_overlap >= SYNONYM_OVERLAP and not found.values_differ:
        return PairVerdict("duplicate", similarity, "The same words, or words of the same "
                           "meaning.", "cues+cosine")
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


def _in_usual_words(text: str) -> str:
    """`text` with each relation said the usual way: "is based in" → "lives in"."""
    for pattern, replacement in _SAME_RELATION:
        text = pattern.sub(replacement, text)
    return text


def clauses(text: str) -> list[str]:
    """A sentence's clauses, each with the first clause's subject where it has none: "My
    cousin Ines lives in Valencia and teaches chemistry" → "My cousin Ines lives in
    Valencia", "My cousin Ines teaches chemistry"."""
    text = _in_usual_words(_NOW.sub("", text).strip(" .!?"))
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
                return _different_values(name, other_name, f"your {other_thing}'s name")
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
