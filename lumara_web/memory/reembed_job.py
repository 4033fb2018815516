"""The server's re-embed job: reembed.reembed_all on a background thread with a connection of
its own, one at a time, its progress kept for GET /api/reembed, /health and the page's
progress bar. Started on request, or by itself at start-up when the stored vectors were made
by another embedding model than the current one. Plain Python: knows no Flask."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from ..errors import LumaraError
from ..inference.embeddings import EmbeddingService
from ..storage import db, meta_store, store
from .reembed import BATCH, reembed_all

log = logging.getLogger(__name__)

# Why the state is "running": a person asked, the model changed since the vectors were made,
# or an import is embedding its memories (inline, in its own request).
REASONS = ("requested", "model_changed", "import")
# Texts a batch here (the CLI, alone on the machine, uses reembed.BATCH = 64). A search waits
# on the inference thread for the batch in progress: with 1,000 memories on two busy cores,
# searches during the run took 99 ms p50 with 16 against 197 ms with 64, for ~20% less
# throughput (115 against 142 memories/s) — background work may be slower, a search not.
SERVER_BATCH = 16


class ReembedRunning(LumaraError):
    status = 409
    code = "reembed_running"


@dataclass(frozen=True)
class ReembedState:
    state: str = "idle"  # idle | running | done | failed
    reason: str | None = None
    done: int = 0
    total: int = 0
    replaced: int | None = None  # vectors replaced (edited or deleted memories are skipped)
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    model: str | None = None  # the model the vectors are being made with
    previous_model: str | None = None  # what made them before (model_changed only)

    def to_dict(self) -> dict:
        return asdict(self)


class ReembedJob:
    def __init__(self, db_path: str | Path, embeddings: EmbeddingService, *,
                 batch: int = SERVER_BATCH):
        self.db_path = db_path
        self.embeddings = embeddings
        self.batch = batch
        self._lock = threading.Lock()  # guards _state
        self._state = ReembedState()
        self.thread: threading.Thread | None = None

    def status(self) -> dict:
        with self._lock:
            return self._state.to_dict()

    def start(self, reason: str = "requested", previous_model: str | None = None) -> dict:
        """Begin re-embedding every memory on a background thread; ReembedRunning (409) if
        a re-embed (or a large import) is already running."""
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, not {reason!r}")
        with self._lock:
            if self._state.state == "running":
                what = ("An import is embedding its memories" if self._state.reason == "import"
                        else "A re-embed is already running")
                raise ReembedRunning(
                    f"{what} ({self._state.done:,} of {self._state.total:,} done); wait for "
                    "it to finish (GET /api/reembed shows its progress), then start again.")
            self._state = ReembedState(state="running", reason=reason,
                                       started_at=store.utc_now(),
                                       model=self.embeddings.model_id,
                                       previous_model=previous_model)
            self.thread = threading.Thread(target=self._run, name="lumara-reembed", daemon=True)
            self.thread.start()
            return self._state.to_dict()

    def _run(self) -> None:
        try:
            conn = db.connect(self.db_path)  # its own: a connection belongs to one thread
            try:
                replaced = reembed_all(conn, self.embeddings, batch=self.batch,
                                       progress=self._report)
            finally:
                conn.close()
        except Exception as error:  # must reach GET /api/reembed, not vanish with the thread
            log.exception("re-embedding failed")
            with self._lock:
                state = self._state
                self._state = replace(
                    state, state="failed", finished_at=store.utc_now(),
                    error=f"Re-embedding stopped after {state.done:,} of {state.total:,} "
                          f"memories: {_describe(error)} The finished batches keep their new "
                          "vectors; start it again to do the rest.")
            return
        with self._lock:
            self._state = replace(self._state, state="done", replaced=replaced,
                                  finished_at=store.utc_now(), model=self.embeddings.model_id)
        log.info("re-embedded %d memories with %s", replaced, self.embeddings.model_id)

    def _report(self, done: int, total: int) -> None:
        with self._lock:
            self._state = replace(self._state, done=done, total=total,
                                  model=self.embeddings.model_id)

    # -- at start-up ------------------------------------------------------------------------
    def start_if_model_changed(self) -> threading.Thread | None:
        """Compare the stored vectors' model with the current one once it has loaded (now,
        if it already has; else on a waiting thread) and start re-embedding if they differ.
        A database that records no model yet is taken to hold the current one's vectors:
        it is new, or from before the record was kept, when one model was all there was."""
        if self.embeddings.model.settled:
            self._check_model()
            return None
        waiter = threading.Thread(target=self._check_when_loaded, daemon=True,
                                  name="lumara-reembed-check")
        waiter.start()
        return waiter

    def _check_when_loaded(self) -> None:
        self.embeddings.model.settle(timeout=None)
        self._check_model()

    def _check_model(self) -> None:
        current = self.embeddings.model_id
        if current is None:  # the model failed to load: /health says why
            return
        try:
            conn = db.connect(self.db_path)
            try:
                stored = meta_store.set_value_if_absent(conn, meta_store.VECTORS_MODEL, current)
                resized = False
                if store.vector_width(conn) != self.embeddings.dimensions:
                    # Vectors of another width cannot even be stored beside the new ones:
                    # the table follows the model, and every memory is embedded again.
                    log.warning("the embedding model makes %d-d vectors: the vector table "
                                "is rebuilt at that width", self.embeddings.dimensions)
                    store.resize_vectors(conn, self.embeddings.dimensions)
                    resized = True
                if (stored != current or resized) and store.count_memories(conn) == 0:
                    meta_store.set_value(conn, meta_store.VECTORS_MODEL, current)
                    return
            finally:
                conn.close()
        except Exception as error:
            log.exception("could not compare the stored vectors' model with %s", current)
            with self._lock:
                self._state = ReembedState(
                    state="failed", reason="model_changed", finished_at=store.utc_now(),
                    model=current, error=f"Could not check which model made the stored "
                                         f"vectors: {_describe(error)}")
            return
        if stored != current or resized:
            log.warning("the stored vectors were made by %s, not %s: re-embedding them",
                        stored, current)
            try:
                self.start("model_changed", previous_model=stored)
            except ReembedRunning:  # someone started one meanwhile: it does the same work
                pass

    # -- work done elsewhere -----------------------------------------------------------------
    @contextmanager
    def reporting(self, reason: str) -> Iterator[Callable[[int, int], None]]:
        """A progress(done, total) callback for embedding done on the caller's thread (an
        import re-embedding its memories). Once the work is more than one of the import's
        batches (reembed.BATCH) it shows through the same state as a re-embed — unless one
        is running: the work goes on unreported then, and it does not block the import."""
        claimed = False

        def progress(done: int, total: int) -> None:
            nonlocal claimed
            with self._lock:
                if not claimed:
                    if total <= BATCH or self._state.state == "running":
                        return
                    claimed = True
                    self._state = ReembedState(state="running", reason=reason,
                                               started_at=store.utc_now(),
                                               model=self.embeddings.model_id)
                self._state = replace(self._state, done=done, total=total)

        try:
            yield progress
        except Exception as error:
            if claimed:
                with self._lock:
                    self._state = replace(self._state, state="failed",
                                          finished_at=store.utc_now(),
                                          error=_describe(error) + " Nothing was imported.")
            raise
        if claimed:
            with self._lock:
                self._state = replace(self._state, state="done", finished_at=store.utc_now())


def _describe(error: Exception) -> str:
    message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
    return message if message.endswith((".", "!", "?")) else message + "."
