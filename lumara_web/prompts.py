"""What the chat model is told. The system prompt is fixed and always first, and earlier
turns are replayed exactly, so llama.cpp reuses its KV cache for everything before the
newest message (the memories come with that message, not in the system prompt)."""

from __future__ import annotations

import re
from typing import Sequence

SYSTEM_PROMPT = (
    "You are Lumara, a personal memory assistant running on the user's own computer. "
    "The user's saved memories relevant to each message are listed before it. "
    "Answer questions using those memories, briefly and directly, speaking to the user as "
    "'you'. Never invent personal facts that are not in the memories. "
    "When the user tells you something, acknowledge it in one short sentence.")

NO_MEMORY_REPLY = ("I don't have a memory about that yet. If you tell me, I'll remember it.")

# Longest memory text put in a prompt: the model needs the gist; a 10,000-character memory
# would crowd out everything else (and take seconds to read).
MAX_MEMORY_CHARS_IN_PROMPT = 600

_QUESTION_START = re.compile(
    r"^(who|whom|whose|what|when|where|which|why|how|do|does|did|is|are|was|were|am|can|"
    r"could|should|would|will|shall|have|has|had|tell me|remind me|list|show me)\b", re.I)
_SMALL_TALK = re.compile(
    r"^(hi|hello|hey|yo|thanks|thank you|thx|ok|okay|cool|nice|great|good (morning|night|"
    r"evening|afternoon)|bye|goodbye|see you|lol|haha|yes|no|sure|fine|hmm+)\b[\s!.?]*$", re.I)
_PERSONAL = re.compile(r"\b(i|me|my|mine|myself|we|us|our|ours)\b", re.I)


def classify(message: str) -> str:
    """'question', 'small_talk' or 'statement' (something to remember)."""
    text = message.strip()
    if _SMALL_TALK.match(text):
        return "small_talk"
    if text.endswith("?") or _QUESTION_START.match(text):
        return "question"
    return "statement"


def is_personal(message: str) -> bool:
    """Does the message ask about the user's own life (so only a memory can answer)?"""
    return bool(_PERSONAL.search(message))


def memory_block(memories: Sequence[dict]) -> str:
    if not memories:
        return "Relevant memories: none."
    lines = []
    for memory in memories:
        content = " ".join(memory["content"].split())
        if len(content) > MAX_MEMORY_CHARS_IN_PROMPT:
            content = content[:MAX_MEMORY_CHARS_IN_PROMPT].rsplit(" ", 1)[0] + " …"
        lines.append(f"- {content}")
    return "Relevant memories:\n" + "\n".join(lines)


def user_turn(message: str, memories: Sequence[dict]) -> str:
    return f"{memory_block(memories)}\n\nUser: {message}"


def build_messages(history: Sequence[dict], message: str,
                   memories: Sequence[dict]) -> list[dict]:
    """history: earlier turns as sent before ({"role", "content"}), oldest first."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, *history,
            {"role": "user", "content": user_turn(message, memories)}]
