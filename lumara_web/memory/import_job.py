"""The server's import job: transfer.apply_import on a background thread with a connection of
its own, one import at a time, its phase, progress and rate kept for GET /api/import and the
page's progress bar, then its result. The document is checked whole before the job starts
(transfer.parse_import), so a bad file is refused at once and changes nothing. Plain Python:
knows no Flask."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import LumaraError
from ..inference.embeddings import EmbeddingService
from ..search.vector_index import VectorIndex
from ..storage import db, store
from ..storage.backups import BackupFailed, Backups
from .background import BackgroundJob, describe
from .reembed_job import SERVER_BATCH
from .transfer import ImportDocument, apply_import


class ImportRunning(LumaraError):
    status = 409
    code = "import_running"


@dataclass(frozen=True)
class ImportState:
    id: int | None = None  # numbers the imports since the server started
    state: str = "idle"  # idle | running | done | failed
    phase: str | None = None  # transfer.PHASES: embedding | checking | writing
    done: int = 0  # of the phase's total
    total: int = 0
    memories: int = 0  # in the file
    memories_per_s: float | None = None  # the phase's rate; when done, the whole import's
    phase_seconds: dict = field(default_factory=dict)  # how long each finished phase took
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    result: dict | None = None  # transfer.ImportResult.to_dict() when done

    def to_dict(self) -> dict:
        return {**asdict(self), "status_url": None if self.id is None
                else f"/api/import/{self.id}"}


class ImportJob(BackgroundJob):
    thread_name = "lumara-import"

    def __init__(self, db_path: str | Path, embeddings: EmbeddingService,
                 settings: Mapping[str, Any], vector_index: VectorIndex | None = None, *,
                 batch: int = SERVER_BATCH, backups: Backups | None = None):
        super().__init__(ImportState())
        self.db_path = db_path
        self.embeddings = embeddings
        self.settings = settings
        self.vector_index = vector_index
        self.backups = backups  # a backup first (on this thread: it may take seconds)
        # Texts embedded at a time: as small as the re-embed's, for the same reason (a
        # search waits on the inference thread for the batch in progress).
        self.batch = batch
        self._started = self._phase_started = 0.0

    def start(self, document: ImportDocument) -> dict:
        """Import `document` (already checked) on a background thread; ImportRunning (409)
        if an import is running."""
        return self._begin(
            lambda previous: ImportState(id=(previous.id or 0) + 1, state="running",
                                         memories=len(document.memories),
                                         started_at=store.utc_now()),
            lambda: self._import(document), lambda running: ImportRunning(
                f"An import is already running ({running.phase or 'starting'}: "
                f"{running.done:,} of {running.total:,}); wait for it to finish "
                f"(GET {running.to_dict()['status_url']} shows its progress), then import "
                "this file."))

    def _import(self, document: ImportDocument) -> dict:
        if self.backups is not None:
            self.backups.before("import")
        self._started = self._phase_started = time.perf_counter()
        conn = db.connect(self.db_path)  # its own: a connection belongs to one thread
        try:
            result = apply_import(conn, document, embeddings=self.embeddings,
                                  settings=self.settings, vector_index=self.vector_index,
                                  progress=self._report, batch=self.batch)
        finally:
            conn.close()
        now = time.perf_counter()
        return {"result": result.to_dict(),
                "memories_per_s": _rate(len(document.memories), now - self._started),
                "phase_seconds": self._phase_ended(now)}

    def _report(self, phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        seconds = self._state.phase_seconds  # only this thread changes it
        if phase != self._state.phase:
            seconds = self._phase_ended(now)
            self._phase_started = now
        self._update(phase=phase, done=done, total=total, phase_seconds=seconds,
                     memories_per_s=_rate(done, now - self._phase_started))

    def _phase_ended(self, now: float) -> dict:
        """phase_seconds with the current phase's time added."""
        state = self._state
        if state.phase is None:
            return state.phase_seconds
        return {**state.phase_seconds, state.phase: round(now - self._phase_started, 3)}

    def _failure(self, state: ImportState, error: Exception) -> str:
        if isinstance(error, BackupFailed):
            return error.message  # nothing was imported
        return (f"The import stopped while {state.phase or 'starting'} ({state.done:,} of "
                f"{state.total:,}): {describe(error)} Nothing was imported; import the file "
                "again.")


def _rate(done: int, seconds: float) -> float | None:
    return round(done / seconds, 1) if seconds > 0 and done else None
