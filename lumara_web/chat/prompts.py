"""What the chat model is told, and the replies that need no model.

Prompts are laid out for llama.cpp's KV cache: a fixed system prompt and fixed examples
come first, then earlier turns replayed exactly as they were sent, then the new message
with its memories. Everything before the new message is a prefix the model has already
read, so only the new message is processed.

The default model (SmolLM2-135M-Instruct) is small: measured on this project's machines it
answers well from listed memories when shown two examples and decoded greedily, puts the
most relevant memory last (it favours the nearest), but it cannot write a trustworthy
acknowledgement or greeting (it apologises for losses nobody mentioned). So statements and
small talk get templated replies, and personal questions with no matching memory get an
honest "no memory" reply instead of an invention.
"""

from __future__ import annotations

import re
from typing import Sequence

from ..inference.few_shot import FewShotPrompt

SYSTEM_PROMPT = (
    "You are Lumara, a personal memory assistant. Answer the user's question in one short "
    "sentence, using the memories shown with it. Speak to the user as 'you'.")

# Fixed examples after the system prompt: part of the cached prefix, so free after the
# first turn. The relevant memory is placed last in each, as in real prompts.
EXAMPLES = (
    ("I parked the bike in the garage.", "My brother Tom works as a nurse in Leeds.",
     "What does my brother do?", "Your brother Tom works as a nurse in Leeds."),
    ("I water the tomatoes every morning at 7.", "My dentist appointment is on 4 May.",
     "When is my dentist appointment?", "Your dentist appointment is on 4 May."),
)

NO_MEMORY_REPLY = "I don't have a memory about that yet. If you tell me, I'll remember it."

# Longest memory text put in a prompt: the model needs the gist; a 10,000-character memory
# would crowd out the rest (and take seconds to read).
MAX_MEMORY_CHARS_IN_PROMPT = 600

def _memory_line(content: str) -> str:
    content = " ".join(content.split())
    if len(content) > MAX_MEMORY_CHARS_IN_PROMPT:
        content = content[:MAX_MEMORY_CHARS_IN_PROMPT].rsplit(" ", 1)[0] + " …"
    return f"- {content}"


# Where an answer ends if the model carries on writing the prompt's own layout
# ("Paris.\n\nQuestion: …").
ANSWER_STOPS = ("\nQuestion:", "\nMemories:")


def question_turn(question: str, memory_contents: Sequence[str]) -> str:
    """memory_contents most relevant first; the prompt lists them most relevant last."""
    lines = [_memory_line(content) for content in reversed(memory_contents)] or ["- (none)"]
    return "Memories:\n" + "\n".join(lines) + f"\n\nQuestion: {question}"


ANSWER_PROMPT = FewShotPrompt(SYSTEM_PROMPT, tuple(
    (question_turn(question, [relevant, other]), answer)
    for other, relevant, question, answer in EXAMPLES))
# The system prompt and the example turns: the fixed prefix of every answer prompt.
PINNED_MESSAGES = ANSWER_PROMPT.pinned


def example_turns() -> list[dict]:
    return ANSWER_PROMPT.example_turns()


def answer_messages(history: Sequence[dict], question: str,
                    memory_contents: Sequence[str]) -> list[dict]:
    """history: earlier turns as sent before ({"role", "content"}), oldest first."""
    return ANSWER_PROMPT.messages(question_turn(question, memory_contents), history)


def conversation_so_far(history: Sequence[dict]) -> list[dict]:
    """How the next answer prompt after `history` starts (what the model can read ahead)."""
    return ANSWER_PROMPT.prefix(history)


# -- replies without the model ---------------------------------------------------------
_TO_SECOND_PERSON = {
    "i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself",
    "i'm": "you're", "i've": "you've", "i'd": "you'd", "i'll": "you'll", "am": "are",
    "we": "you", "us": "you", "our": "your", "ours": "yours", "ourselves": "yourselves",
    "we're": "you're", "we've": "you've",
}
_WORD = re.compile(r"[A-Za-z']+")


def to_second_person(text: str) -> str:
    """'My dog is called Rex' → 'your dog is called Rex' (for acknowledgements)."""
    words = text.split()
    out = []
    for index, word in enumerate(words):
        match = _WORD.search(word)
        key = match.group(0).lower() if match else ""
        replacement = _TO_SECOND_PERSON.get(key)
        if key == "am" and not (index and words[index - 1].lower() == "i"):
            replacement = None  # "am" only follows "I"; "8 am" stays
        if key == "was" and index and words[index - 1].lower() == "i":
            replacement = "were"
        if replacement is None:
            out.append(word)
            continue
        out.append(word[:match.start()] + replacement + word[match.end():])
    return " ".join(out)


def acknowledgement(statement: str) -> str:
    text = " ".join(statement.split()).rstrip(".!… ")
    if len(text) > 160:  # a long story gets a short ack, not an echo
        return "Got it, thanks for telling me."
    return f"Noted: {to_second_person(text)}."


def small_talk_reply(message: str) -> str:
    text = message.strip().lower()
    if re.match(r"^(thanks|thank you|thx|ty\b|cheers)", text):
        return "You're welcome!"
    if re.match(r"^(bye|goodbye|see (you|ya)|good ?night|talk (to you )?(later|soon)|have a)",
                text):
        return "Goodbye! Your memories stay safe on this computer."
    if re.match(r"^(how are|how('s| is) it going|how have you|what'?s up|sup\b)", text):
        return "All well here, thanks! Tell me something to remember, or ask me about it."
    if re.match(r"^(hi|hello|hey|yo|hiya|howdy|greetings|good (morning|evening|afternoon|day)|"
                r"nice to meet)", text):
        return "Hello! Tell me something to remember, or ask me about what you've told me."
    return "Okay."


def no_memory_reply(subject: str | None = None) -> str:
    """The honest reply to a personal question no memory answers, naming what was asked
    about. (No nearby memory is quoted: its names read like an answer.)"""
    if subject is None:
        return NO_MEMORY_REPLY
    return f"I don't have a memory about your {subject} yet. If you tell me, I'll remember it."


def _quoted_memory(memory: str) -> str:
    text = " ".join(memory.split()).rstrip(" .!")
    if len(text) > MAX_MEMORY_CHARS_IN_PROMPT:
        text = text[:MAX_MEMORY_CHARS_IN_PROMPT].rsplit(" ", 1)[0] + " …"
    return to_second_person(text) + "."


def memory_reply(memory: str) -> str:
    """A personal answer in the memory's own words, when the model's words cannot be
    trusted: "Here is what I remember: you sprained your right ankle …"."""
    return f"{_MEMORY_REPLY_LEAD}{_quoted_memory(memory)}"


_MEMORY_REPLY_LEAD = "Here is what I remember: "


def as_read_back(reply: str) -> str:
    """A reply as later prompts replay it to the model: a quoted memory without its lead-in,
    in the examples' own voice ("Your sister lives in Porto."). The small model copies a
    lead-in it has seen into answers with no memory ("Here is what I remember: (none)")."""
    if reply.startswith(_MEMORY_REPLY_LEAD):
        quoted = reply[len(_MEMORY_REPLY_LEAD):]
        return quoted[:1].upper() + quoted[1:]
    return reply


def closest_memory_reply(memory: str) -> str:
    """The honest reply when no memory says what was asked, but one is about it."""
    return (f"I don't have a memory that says that. The closest I have: "
            f"{_quoted_memory(memory)}")


def forget_reply(target: str, found: int) -> str:
    """The reply to a request to forget: nothing is deleted until the user picks what."""
    if not found:
        return (f"I have no memory about \u201c{target}\u201d, so there is nothing to forget.")
    which = "this memory" if found == 1 else f"these {found} memories"
    return f"I found {which}. Choose what to forget below: nothing is deleted until you do."
