"""Load a heavy model once, on a background thread, and let callers wait for it.

Both models (embedding and chat) follow the same life: not_started → loading → ready | error.
The app answers HTTP from the first moment; only work that needs the model waits."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Generic, TypeVar

from ..errors import ModelUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


class BackgroundLoad(Generic[T]):
    def __init__(self, what: str, loader: Callable[[], T] | None = None,
                 loaded: T | None = None):
        self.what = what  # "embedding model", "chat model": used in messages
        self._loader = loader
        self._ready = threading.Event()
        self.value: T | None = None
        self.state = "not_started"
        self.error: str | None = None
        self.seconds: float | None = None
        if loaded is not None:
            self.value, self.state = loaded, "ready"
            self._ready.set()

    def start(self) -> threading.Thread | None:
        """Begin loading on a daemon thread (once; no-op without a loader or when done)."""
        if self.state != "not_started" or self._loader is None:
            return None
        self.state = "loading"
        thread = threading.Thread(target=self.run, name=f"load {self.what}", daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        """Load on the calling thread (the engine's worker uses this directly)."""
        self.state = "loading"
        started = time.perf_counter()
        try:
            value = self._loader()
        except Exception as exc:  # any failure must reach /health, not vanish with a thread
            self.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self.state = "error"
            log.error("%s failed to load: %s", self.what, self.error)
        else:
            self.seconds = time.perf_counter() - started
            self.value, self.state = value, "ready"
            log.info("%s ready in %.2f s", self.what, self.seconds)
        self._ready.set()

    @property
    def settled(self) -> bool:
        """Loading has ended, well or badly."""
        return self._ready.is_set()

    def settle(self, timeout: float) -> bool:
        """Wait until loading has ended, well or badly; True if it has."""
        return self._ready.wait(timeout)

    def wait(self, timeout: float) -> T:
        """The loaded value; ModelUnavailable if still loading after `timeout` or failed."""
        if not self._ready.wait(timeout):
            raise ModelUnavailable(f"The {self.what} is still loading; try again in a few "
                                   "seconds.", code="model_loading")
        if self.value is None:
            raise ModelUnavailable(f"The {self.what} could not be loaded: {self.error}",
                                   code="model_failed")
        return self.value

    def status(self) -> dict:
        return {"state": self.state, "error": self.error,
                "load_seconds": None if self.seconds is None else round(self.seconds, 3)}
