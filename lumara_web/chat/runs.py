"""Turns that outlive their page: an answer goes on generating when the page that asked for it
is reloaded or closed, and a page that opens its conversation again follows it from the
start ("attach"). A run keeps the events of one turn, so a follower sees what the first page
saw; it is forgotten once the turn has ended, when the conversation holds the answer."""

from __future__ import annotations

import threading
from typing import Callable, Iterator

# Seconds a follower waits for the next event before it checks whether it should go on.
FOLLOW_POLL_SECONDS = 0.5


class TurnRun:
    """The events of one running turn, in order, and its stop signal."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.conversation_id: int | None = None
        self._events: list[dict] = []
        self._ended = False
        self._changed = threading.Condition()

    def add(self, event: dict) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    def end(self) -> None:
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def follow(self, gone: Callable[[], bool]) -> Iterator[dict]:
        """Every event from the first, as they come, until the turn ends or `gone()`."""
        seen = 0
        while not gone():
            with self._changed:
                self._changed.wait_for(lambda: len(self._events) > seen or self._ended,
                                       FOLLOW_POLL_SECONDS)
                new, ended = self._events[seen:], self._ended
            seen += len(new)
            yield from new
            if ended and not new:
                return


class TurnRuns:
    """The running turns by conversation: at most one each (a page sends one at a time)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_conversation: dict[int, TurnRun] = {}

    def started(self, run: TurnRun, conversation_id: int) -> None:
        with self._lock:
            run.conversation_id = conversation_id
            self._by_conversation[conversation_id] = run

    def ended(self, run: TurnRun) -> None:
        run.end()
        with self._lock:
            if self._by_conversation.get(run.conversation_id) is run:
                del self._by_conversation[run.conversation_id]

    def running(self, conversation_id: int) -> TurnRun | None:
        with self._lock:
            return self._by_conversation.get(conversation_id)
