"""A memory's type from the grammar of its sentence: knowledge (a fact that holds), experience
(something that happened to the user, or what it taught them) or method (how the user does
something, or a routine).

Three shapes decide it, read from the sentence's first clause: a method opens with a purpose
or an occasion ("To clean the grinder I…", "When I travel I always…") or is the user's own
routine ("I water the plants every morning"); an experience is an event told in the past
("Last winter I broke my wrist", "We got a dog in March") or an effect on the user ("Coffee
after 3 pm keeps me awake"); everything else is knowledge. The embedding's nearest prototype,
tried before, read tone rather than grammar ("My shoe size is 43." came out an experience).
It is a first guess: the user can change the type.
"""

from __future__ import annotations

import re

_IRREGULAR_PAST = (
    "went got saw met made took ran ate flew bought came found gave left lost sold won wrote "
    "broke began drove fell felt fought forgot grew heard kept knew led paid rode sang sat "
    "slept spent spoke stood swam taught thought told understood woke wore became brought "
    "built caught chose did drew drank held hid lent meant rang rose sent shook shot showed "
    "stole struck threw tore learnt dreamt burnt quit").split()
# -ed words that are not past tenses ("I feed the starter", "the spare bed").
_NOT_PAST = ("feed|need|bleed|breed|speed|seed|shed|bed|red|weed|proceed|succeed|exceed|"
             "indeed|shred|embed")
_PAST = rf"(?!(?:{_NOT_PAST})\b)(\w+ed|{'|'.join(_IRREGULAR_PAST)})"
_WHEN = (r"((yesterday|last \w+|(this|that) \w+|earlier today|\w+ (days?|weeks?|months?|years?)"
         r" ago|in (19|20)\d\d|once|back in \w+),? )?")
_SUBJECT = r"(i|we|he|she|they|(my|our|his|her|their) \w+( \w+)?)"
_ADVERB = (r"( (finally|just|recently|once|first|also|then|already|really|accidentally|never|"
           r"even))?")
_PAST_EVENT = re.compile(rf"^{_WHEN}{_SUBJECT}{_ADVERB} {_PAST}\b", re.I)
_EFFECT_ON_USER = re.compile(
    r"\b(helps?|helped|makes?|made|gives?|gave|reduces?|reduced|keeps?|calms?|calmed|"
    r"works for) (me|my)\b|\b(i|we) \w+( \w+)? (if|when|after) (i|we)\b", re.I)
_PURPOSE_OR_OCCASION = re.compile(
    r"^(to \w+|the (best )?(trick|secret|key|way|recipe) (for me )?to|"
    r"(when|whenever|before|after|for|if) [^,]*?,? (i|we)( always| first| usually| never)? \w+)",
    re.I)
_ROUTINE = re.compile(
    r"\b(every|each (day|morning|evening|night|week|month|year)|twice|once a|once every|daily|"
    r"weekly|monthly|nightly|always|usually|normally|whenever|times a)\b", re.I)
_FIRST_CLAUSE_END = re.compile(r";|, (?:but|and|so|because|which)\b")


def memory_type(text: str) -> str:
    """'knowledge', 'experience' or 'method' for one memory's text."""
    clause = _FIRST_CLAUSE_END.split(" ".join(text.split()), maxsplit=1)[0].lower()
    if _PURPOSE_OR_OCCASION.match(clause):
        return "method"
    if _PAST_EVENT.match(clause) or _EFFECT_ON_USER.search(clause):
        return "experience"
    if re.match(r"^(i|we)\b", clause) and _ROUTINE.search(clause):
        return "method"
    return "knowledge"
