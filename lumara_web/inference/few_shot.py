"""A few-shot prompt: a system prompt and example exchanges, then the message to answer.

The system prompt and the examples are the same for every prompt of one kind, so they come
first: llama.cpp reuses what it read of them (its KV cache), and they are `pinned`, never
trimmed to fit the context (engine.fit_to_context)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class FewShotPrompt:
    system: str
    examples: tuple[tuple[str, str], ...]  # (user message, the assistant's reply)

    @property
    def pinned(self) -> int:
        """How many leading messages are the fixed prefix: the system prompt and examples."""
        return 1 + 2 * len(self.examples)

    def example_turns(self) -> list[dict]:
        turns = []
        for said, reply in self.examples:
            turns += [{"role": "user", "content": said},
                      {"role": "assistant", "content": reply}]
        return turns

    def prefix(self, history: Sequence[dict] = ()) -> list[dict]:
        """The fixed prefix, then `history`: how the next prompt after `history` starts."""
        return [{"role": "system", "content": self.system}, *self.example_turns(), *history]

    def messages(self, user: str, history: Sequence[dict] = ()) -> list[dict]:
        """The fixed prefix, then `history` (earlier turns, oldest first), then `user`."""
        return [*self.prefix(history), {"role": "user", "content": user}]
