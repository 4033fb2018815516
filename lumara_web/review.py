"""Settling what the assistant could not decide alone: suggested memories (accept, with
optional edits, or dismiss) and contradictions (keep both, replace, keep original)."""

from __future__ import annotations

from typing import Any

from . import review_store, store
from .db import transaction
from .errors import LumaraError, NotFound
from .insights import Findings
from .memories import MemoryService
from .review_store import Contradiction, Suggestion
from .store import Memory
from .validation import MemoryPatch, NewMemory

RESOLUTIONS = ("keep_both", "replace", "keep_original")


class AlreadySettled(LumaraError):
    status = 409
    code = "already_settled"


class ReviewService:
    def __init__(self, memories: MemoryService):
        self.memories = memories

    def accept_suggestion(self, conn: Any, suggestion_id: int,
                          edits: MemoryPatch | None = None) -> tuple[Suggestion, Memory, Findings]:
        """Save the suggestion (as edited) as a memory, and mark it accepted — together."""
        suggestion = self._pending_suggestion(conn, suggestion_id)
        edits = edits or MemoryPatch()
        new = NewMemory(content=edits.content or suggestion.content,
                        type=edits.type or suggestion.type,
                        tags=suggestion.tags if edits.tags is None else edits.tags, metadata={})
        self.memories.embeddings.embed(new.content)  # outside the write lock; memoized
        with transaction(conn):
            memory, findings = self.memories.add(conn, new, source="chat")
            settled = review_store.settle_suggestion(conn, suggestion_id, "accepted", memory.id)
            if settled is None:
                raise AlreadySettled(f"Suggestion {suggestion_id} was settled meanwhile.")
        return settled, memory, findings

    def dismiss_suggestion(self, conn: Any, suggestion_id: int) -> Suggestion:
        self._pending_suggestion(conn, suggestion_id)
        settled = review_store.settle_suggestion(conn, suggestion_id, "dismissed")
        if settled is None:
            raise AlreadySettled(f"Suggestion {suggestion_id} was settled meanwhile.")
        return settled

    def resolve_contradiction(self, conn: Any, contradiction_id: int,
                              resolution: str) -> tuple[Contradiction, Memory | None]:
        """keep_both: nothing deleted; replace: the older memory goes; keep_original: the
        newer one goes. Returns the resolved record and the memory deleted, if any."""
        contradiction = review_store.get_contradiction(conn, contradiction_id)
        if contradiction is None:
            raise NotFound(f"No contradiction has id {contradiction_id}.",
                           code="contradiction_not_found")
        if contradiction.status != "pending":
            raise AlreadySettled(f"Contradiction {contradiction_id} is already resolved "
                                 f"({contradiction.resolution}).")
        doomed = {"keep_both": None, "replace": contradiction.existing_memory_id,
                  "keep_original": contradiction.memory_id}[resolution]
        with transaction(conn):
            resolved = review_store.mark_contradiction_resolved(conn, contradiction_id,
                                                                resolution)
            if resolved is None:
                raise AlreadySettled(f"Contradiction {contradiction_id} was resolved meanwhile.")
            deleted = store.delete_memory(conn, doomed) if doomed is not None else None
        return review_store.get_contradiction(conn, contradiction_id), deleted

    def _pending_suggestion(self, conn: Any, suggestion_id: int) -> Suggestion:
        suggestion = review_store.get_suggestion(conn, suggestion_id)
        if suggestion is None:
            raise NotFound(f"No suggestion has id {suggestion_id}.",
                           code="suggestion_not_found")
        if suggestion.status != "pending":
            raise AlreadySettled(f"Suggestion {suggestion_id} is already {suggestion.status}.")
        return suggestion
