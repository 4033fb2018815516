"""Settling what the assistant could not decide alone: suggested memories (accept, with
optional edits, or dismiss) and contradictions (keep both, replace, keep original)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import LumaraError, NotFound, ValidationError
from ..storage import review_store, store
from ..storage.db import transaction
from ..storage.review_store import RESOLUTIONS, Contradiction, Suggestion
from ..storage.store import Memory
from .findings import Findings
from .service import MemoryService
from .validation import MemoryPatch, NewMemory


class AlreadySettled(LumaraError):
    status = 409
    code = "already_settled"


@dataclass(frozen=True)
class ContradictionWithMemories:
    """A contradiction and the two memories it is about (None for one since deleted)."""

    contradiction: Contradiction
    memory: Memory | None
    existing_memory: Memory | None

    def to_dict(self) -> dict:
        return {**self.contradiction.to_dict(),
                "memory": self.memory.to_dict() if self.memory else None,
                "existing_memory": (self.existing_memory.to_dict()
                                    if self.existing_memory else None)}


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

    def reopen_suggestion(self, conn: Any,
                          suggestion_id: int) -> tuple[Suggestion, Memory | None]:
        """Undo accepting or dismissing: the suggestion is pending again and the memory its
        acceptance made goes to the trash (restorable from there). Returns the suggestion and
        that memory, if any."""
        with transaction(conn):
            suggestion = review_store.get_suggestion(conn, suggestion_id)
            if suggestion is None:
                raise NotFound(f"No suggestion has id {suggestion_id}.",
                               code="suggestion_not_found")
            if suggestion.status == "pending":
                raise AlreadySettled(f"Suggestion {suggestion_id} is pending already.")
            deleted = (store.delete_memory(conn, suggestion.memory_id)
                       if suggestion.memory_id is not None else None)
            reopened = review_store.reopen_suggestion(conn, suggestion_id)
        return reopened, deleted

    def list_suggestions(self, conn: Any, status: str | None = "pending") -> list[Suggestion]:
        """Newest first; every status when `status` is None."""
        return review_store.list_suggestions(conn, status=status)

    def list_contradictions(self, conn: Any,
                            status: str | None = "pending") -> list[ContradictionWithMemories]:
        memories: dict[int, Memory | None] = {}

        def memory(memory_id: int | None) -> Memory | None:
            if memory_id is None:
                return None
            if memory_id not in memories:
                memories[memory_id] = store.get_memory(conn, memory_id)
            return memories[memory_id]

        return [ContradictionWithMemories(item, memory(item.memory_id),
                                          memory(item.existing_memory_id))
                for item in review_store.list_contradictions(conn, status=status)]

    def resolve_contradiction(self, conn: Any, contradiction_id: int,
                              resolution: str) -> tuple[Contradiction, Memory | None]:
        """keep_both: nothing deleted; replace: the older memory goes; keep_original: the
        newer one goes. Returns the resolved record and the memory deleted, if any."""
        if resolution not in RESOLUTIONS:
            raise ValidationError(f"resolution {resolution!r} is not one of "
                                  f"{', '.join(RESOLUTIONS)}.", code="invalid_resolution")
        # Read and act under one write lock: neither memory can vanish in between (else
        # 'replace' after the newer one was deleted would delete the only one left).
        with transaction(conn):
            contradiction = review_store.get_contradiction(conn, contradiction_id)
            if contradiction is None:
                raise NotFound(f"No contradiction has id {contradiction_id}.",
                               code="contradiction_not_found")
            if contradiction.status != "pending":
                raise AlreadySettled(f"Contradiction {contradiction_id} is already resolved "
                                     f"({contradiction.resolution}).")
            if contradiction.memory_id is None or contradiction.existing_memory_id is None:
                raise AlreadySettled(f"Contradiction {contradiction_id} is moot: one of its "
                                     f"memories has been deleted.")
            doomed = {"keep_both": None, "replace": contradiction.existing_memory_id,
                      "keep_original": contradiction.memory_id}[resolution]
            review_store.mark_contradiction_resolved(conn, contradiction_id, resolution)
            deleted = store.delete_memory(conn, doomed) if doomed is not None else None
            # Re-read: deleting the memory set its id here to NULL.
            resolved = review_store.get_contradiction(conn, contradiction_id)
        return resolved, deleted

    def _pending_suggestion(self, conn: Any, suggestion_id: int) -> Suggestion:
        suggestion = review_store.get_suggestion(conn, suggestion_id)
        if suggestion is None:
            raise NotFound(f"No suggestion has id {suggestion_id}.",
                           code="suggestion_not_found")
        if suggestion.status != "pending":
            raise AlreadySettled(f"Suggestion {suggestion_id} is already {suggestion.status}.")
        return suggestion
