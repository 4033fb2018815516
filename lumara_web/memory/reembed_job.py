"""The server's re-embed job: reembed.reembed_all on a background thread with a connection of
its own, one at a time, its progress kept for GET /api/reembed, /health and the page's
progress bar. Started on request, or by itself at start-up when the stored vectors were made
by another embedding model than the current one. Plain Python: knows no Flask."""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import LumaraError
from ..inference.embeddings import EmbeddingService
from ..storage import db, meta_store, store
from ..storage.backups import BackupFailed, Backups
from .background import BackgroundJob, describe
from .reembed import reembed_all

log = logging.getLogger(__name__)

# Why the state is "running": a person asked, or the model changed since the vectors were made.
REASONS = ("requested", "model_changed")
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


class ReembedJob(BackgroundJob):
    thread_name = "lumara-reembed"

    def __init__(self, db_path: str | Path, embeddings: EmbeddingService, *,
                 batch: int = SERVER_BATCH, backups: Backups | None = None):
        super().__init__(ReembedState())
        self.db_path = db_path
        self.embeddings = embeddings
        self.batch = batch
        self.backups = backups  # a backup first (on this thread: it may take seconds)

    def start(self, reason: str = "requested", previous_model: str | None = None) -> dict:
        """Begin re-embedding every memory on a background thread; ReembedRunning (409) if
        one is already running."""
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, not {reason!r}")
        return self._begin(
            lambda _: ReembedState(state="running", reason=reason, started_at=store.utc_now(),
                                   model=self.embeddings.model_id,
                                   previous_model=previous_model),
            self._reembed_all, lambda running: ReembedRunning(
                f"A re-embed is already running ({running.done:,} of {running.total:,} "
                "done); wait for it to finish (GET /api/reembed shows its progress), then "
                "start again."))

    def _reembed_all(self) -> dict:
        if self.backups is not None:
            self.backups.before("reembed")
        conn = db.connect(self.db_path)  # its own: a connection belongs to one thread
        try:
            replaced = reembed_all(conn, self.embeddings, batch=self.batch,
                                   progress=self._report)
        finally:
            conn.close()
        log.info("re-embedded %d memories with %s", replaced, self.embeddings.model_id)
        return {"replaced": replaced, "model": self.embeddings.model_id}

    def _failure(self, state: ReembedState, error: Exception) -> str:
        if isinstance(error, BackupFailed):
            return error.message  # nothing was re-embedded
        return (f"Re-embedding stopped after {state.done:,} of {state.total:,} memories: "
                f"{describe(error)} The finished batches keep their new vectors; start it "
                "again to do the rest.")

    def _report(self, done: int, total: int) -> None:
        self._update(done=done, total=total, model=self.embeddings.model_id)

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
                                         f"vectors: {describe(error)}")
            return
        if stored != current or resized:
            log.warning("the stored vectors were made by %s, not %s: re-embedding them",
                        stored, current)
            try:
                self.start("model_changed", previous_model=stored)
            except ReembedRunning:  # someone started one meanwhile: it does the same work
                pass
