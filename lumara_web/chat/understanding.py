"""What a message is: something to remember, a question about the user's memories, a general
request the model should simply answer, small talk, or a request to forget a memory.

Decided by the shape of the words, not by the chat model: the bundled 135M model labels
messages no better than chance, and a wrong label is the first thing a person notices (a
request saved as a memory, a question answered "Noted"). The order of the checks is the
decision: a greeting or lead-in ("Hi!", "Actually,", "Remember that") is read off first, then
whole-message small talk, forgetting, statement lead-ins, and last questions and requests,
which are about the user when they speak of the user's own life (`text.is_personal`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..text import is_personal

INTENTS = ("statement", "question", "general", "small_talk", "forget")

# A closing run of punctuation and emoticons: "ok :)", "thanks!!", "bye ;-)".
_TAIL = r"[\s!.?,:;)(\-_*~'\"^<3dDpP]*$"
_GREETING = re.compile(
    r"^(hi|hello|hey|hiya|howdy|yo|greetings|good (morning|afternoon|evening|day))"
    r"( there| lumara| again| everyone)?\b[\s!.,:;)(\-]*", re.I)
# Words that open a message without being part of what it says.
_LEAD_IN = re.compile(
    r"^(actually|oh|ah|so|well|ok(ay)?( so)?|also|and|but|hmm+|um+|right|anyway|update|"
    r"quick update|by the way|btw|oh and)\b[\s,:;!.\-]+", re.I)
_SMALL_TALK = re.compile(
    r"^(thanks?( you)?( a lot| so much| very much| again)?|thank you|thx|ty|cheers|"
    r"ok(ay)?|k|cool|nice|great|awesome|perfect|good|fine|sure|yes|yeah|yep|no|nope|"
    r"lol|haha+|hmm+|wow|(bye|goodbye|bye bye|good ?night)( for now)?|see (you|ya)( later| soon| tomorrow)?|"
    r"talk (to you )?(later|soon)|have a (nice|good|great) (day|evening|night|weekend)|"
    r"how are (you|things)( doing)?( today)?|how('s| is) (it|your (day|week|morning|evening))"
    r"( going)?|how have you been|"
    r"what'?s up|sup|nice to meet you|you'?re welcome|no problem|never ?mind|"
    r"forget (it|about it)|"
    r"good (morning|afternoon|evening|day)|hi|hello|hey)" + _TAIL, re.I)
# "Forget that …", "Please delete the memory about …", "You can forget what I said about …".
_POLITE = r"(please |pls |can you |could you |would you |you can |you may |i want you to |" \
          r"i'?d like you to |go ahead and |just )*"
_FORGET = re.compile(rf"^{_POLITE}(forget|stop remembering|unlearn)\b[\s,:]*(?P<rest>.*)$",
                     re.I | re.S)
_DELETE = re.compile(
    rf"^{_POLITE}(delete|remove|erase|drop|clear|wipe)\b[\s,:]*(?P<rest>.*)$", re.I | re.S)
# What a delete request must point at to be about a memory, not about the world
# ("Remove the stains from a shirt" is a request for advice).
_MEMORY_OBJECT = re.compile(
    r"\b(memor(y|ies)|notes?|entry|what i (said|told|mentioned|wrote)|"
    r"everything (you know )?about)\b|^((that|this|it)\W*$|(my|our) )", re.I)
_FORGET_FILLER = re.compile(
    r"^(about |that |the (memory|memories|note|notes|fact|thing|entry|info(rmation)?) "
    r"(about|that|of|on|saying|where) |what i (said|told you|mentioned) (about )?|"
    r"everything (about|on) |my memory (about|of) |all (about )?)+", re.I)
# "Remember that …", "Note: …", "Just so you know, …": the rest is what to remember.
_REMEMBER = re.compile(
    rf"^{_POLITE}(remember|note|save|store|keep in mind|don'?t forget|never forget|"
    r"make a note|for the record|for your information|fyi|just so you know|"
    r"just to let you know|just letting you know|so you know|you should know)"
    r"( (that|this))?\b[\s,:;\-]*", re.I)
_WH_WORD = r"(who|whom|whose|what|what'?s|whats|when|where|where'?s|which|why|how|how'?s)"
_AUXILIARY = r"(do|does|did|is|are|was|were|am|can|could|should|would|will|shall|have|has|" \
             r"had|may|might|isn'?t|aren'?t|don'?t|doesn'?t|didn'?t|won'?t|can'?t)"
_QUESTION_START = re.compile(rf"^({_WH_WORD}|{_AUXILIARY})\b", re.I)
# "When I change the chain, I …": a clause that opens with a question word but goes on with
# its subject, not an auxiliary or a verb, tells something.
_CLAUSE_START = re.compile(
    r"^(when|where|if|while|how|whenever|wherever|after|before|because|since|once)\s+"
    r"(i|we|you|he|she|they|my|our|the|a|an)\b", re.I)
# Imperatives that ask for something ("Tell me …", "Write a haiku", "Explain …").
_REQUEST_VERB = (
    r"(tell|remind|summari[sz]e|list|show|give|explain|describe|write|translate|suggest|"
    r"recommend|compose|draft|create|make|generate|calculate|compute|define|name|recite|"
    r"sing|find|help|teach|convert|spell|count|plan|brainstorm|outline|rewrite|correct|"
    r"compare|recap|repeat|quiz|guess|imagine|pretend|say|share|look up|check|answer|"
    r"remove|delete|erase|clear|clean|fix|cook|bake|draw|solve|sort|rank|pick|choose|edit|improve|proofread|"
    r"simplify|paraphrase|shorten|expand|continue|finish|complete|analy[sz]e|estimate|"
    r"predict|debug|design|play)")
# Wishes that ask for something: "I'd like a recipe", "I wonder why …".
_WANTING = (r"(i'?d like|i would like|i want|i need|i wonder|i'?m curious|i'?m wondering|"
            r"let me know)")
_REQUEST = re.compile(rf"^({_POLITE}{_REQUEST_VERB}|{_WANTING})\b", re.I)
# Who asks is not what is asked about: "I'd like a recipe", "Can you tell me a joke".
_ASKING = re.compile(
    rf"^{_POLITE}({_WANTING}( you to| to know| to hear| to learn)?|"
    rf"(tell|show|give|help|teach|send|get|find|explain to) me)\b", re.I)
# Questions about what the user told Lumara, however they are worded.
_ABOUT_MEMORIES = re.compile(
    r"\b(remind me|remember|you know about me|i (told|said|mentioned)|did i (tell|say|"
    r"mention)|about me\b|my memor(y|ies))\b", re.I)
# Someone the conversation already named: a pronoun before any noun could have named them
# ("What does she teach?"), or closing the message ("When did we get her?"); not one with its
# noun in the sentence ("How do plants make their food?").
_PRONOUN = r"(she|he|her|him|his|hers|they|them|their|theirs)"
_REFERS_BACK = re.compile(
    rf"^(\w+'?\w*\s+){{0,2}}{_PRONOUN}\b|\b{_PRONOUN}\W*$", re.I)
# "How do I …?" asks for a way of doing something: a memory answers it if there is one, the
# model otherwise; the "I" is not a fact about the user.
_HOW_TO = re.compile(r"^how (do|can|could|should|would|might|will) (i|we)\b", re.I)


@dataclass(frozen=True)
class Understanding:
    intent: str  # one of INTENTS
    text: str  # the message without its greeting and lead-ins: what it says, asks or forgets
    # Only a memory can answer it ("What is my dog's name?"): without one the honest reply
    # is "no memory", never the model's guess. False for general requests and how-tos.
    needs_memory: bool = False


def understand(message: str) -> Understanding:
    """The intent of one chat message, and its text without greeting or lead-in."""
    text = " ".join(message.split())
    while not _SMALL_TALK.match(text):  # "Hi! My dog is Rex." is a statement
        stripped = _LEAD_IN.sub("", _GREETING.sub("", text, count=1), count=1)
        if stripped == text:
            break
        text = stripped
    if not text or not re.search(r"\w", text) or _is_small_talk(text):
        return Understanding("small_talk", text or message.strip())
    if (forget := _forget_target(text)) is not None:
        return Understanding("forget", forget)
    remembered = _REMEMBER.sub("", text, count=1)
    if remembered != text and remembered and not text.endswith("?"):
        return Understanding("statement", _sentence(remembered))
    asks = _QUESTION_START.match(text) and not _CLAUSE_START.match(text)
    if text.endswith("?") or asks or _REQUEST.match(text):
        asked = _ASKING.sub("", text)
        about_memories = _ABOUT_MEMORIES.search(text) or refers_back(asked)
        if not (about_memories or is_personal(asked)):
            return Understanding("general", text)
        needs_memory = bool(about_memories or is_personal(_HOW_TO.sub("", asked)))
        return Understanding("question", text, needs_memory)
    return Understanding("statement", _sentence(text))


def refers_back(text: str) -> bool:
    """Does the message speak of someone named earlier ("What does she teach?")?"""
    return bool(_REFERS_BACK.search(text.strip(" ?!.")))


def _is_small_talk(text: str) -> bool:
    """Small talk whole, or in pieces: "great, thanks a lot :D"."""
    pieces = [piece for piece in re.split(r"[,.!;]+\s*", text) if re.search(r"\w", piece)]
    return bool(_SMALL_TALK.match(text)) or bool(pieces) and all(
        _SMALL_TALK.match(piece) for piece in pieces)


def _forget_target(text: str) -> str | None:
    """What a request to forget points at ("my locker code is 4471"), or None when `text`
    is not such a request."""
    if match := _FORGET.match(text):
        rest = match["rest"]
    elif (match := _DELETE.match(text)) and _MEMORY_OBJECT.search(match["rest"]):
        rest = match["rest"]
    else:
        return None
    target = _FORGET_FILLER.sub("", rest.strip()).strip(" .!?")
    return target or rest.strip(" .!?")


def _sentence(text: str) -> str:
    """`text` as a sentence: a capital first letter (the lead-in that had it is gone)."""
    return text[:1].upper() + text[1:] if text[:1].islower() else text
