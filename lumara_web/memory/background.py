"""One long piece of work at a time on a background thread, its progress kept for a status
request to read: the shape the re-embed and the import jobs share. Plain Python: knows no
Flask."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any, Callable

from ..errors import LumaraError
from ..storage import store

log = logging.getLogger(__name__)


class BackgroundJob:
    """Holds a frozen dataclass state with at least `state` (idle | running | done | failed),
    `finished_at` and `error`, replaced whole under a lock so a reader never sees half an
    update."""

    thread_name = "lumara-job"

    def __init__(self, initial: Any):
        self._lock = threading.Lock()  # guards _state
        self._state = initial
        self.thread: threading.Thread | None = None

    def status(self) -> dict:
        with self._lock:
            return self._state.to_dict()

    def _begin(self, state: Callable[[Any], Any], work: Callable[[], dict],
               refuse: Callable[[Any], LumaraError]) -> dict:
        """Enter state(previous state) and run `work` on a new thread, or raise
        refuse(current state) if a run is going on. `work` returns the fields to set when it
        has finished."""
        with self._lock:
            if self._state.state == "running":
                raise refuse(self._state)
            self._state = state(self._state)
            self.thread = threading.Thread(target=self._run, args=(work,), daemon=True,
                                           name=self.thread_name)
            self.thread.start()
            return self._state.to_dict()

    def _run(self, work: Callable[[], dict]) -> None:
        try:
            finished = work()
        except Exception as error:  # must reach the status request, not vanish with the thread
            log.exception("%s failed", self.thread_name)
            with self._lock:
                self._state = replace(self._state, state="failed", finished_at=store.utc_now(),
                                      error=self._failure(self._state, error))
            return
        self._update(state="done", finished_at=store.utc_now(), **finished)

    def _failure(self, state: Any, error: Exception) -> str:
        """What a person reads when the run in `state` failed with `error`."""
        raise NotImplementedError

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._state = replace(self._state, **changes)


def describe(error: Exception) -> str:
    """An error as one sentence for a person: a LumaraError's own message, else its type."""
    message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
    return message if message.endswith((".", "!", "?")) else message + "."
