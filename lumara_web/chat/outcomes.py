"""What a turn did besides answering: a memory saved, one suggested for review, one found
already kept, a contradiction raised. Each is kept with the answer (messages.outcomes) as a
small record of ids and the words shown, so the conversation says after a reload which
memory each statement made; read back, each is given the state of what it names now (the
memory still kept or gone, the suggestion or contradiction settled or not), so the page
offers an Undo only while it applies."""

from __future__ import annotations

from typing import Any

from ..storage import review_store, store

KINDS = ("saved", "suggested", "exists", "contradiction")


def outcome_of(event: dict) -> dict | None:
    """The record of a chat event that changed or found a memory, or None for any other."""
    kind = event.get("type")
    if kind == "memory_saved":
        memory = event["memory"]
        return {"kind": "saved", "memory_id": memory["id"], "content": memory["content"]}
    if kind == "memory_suggested":
        suggestion = event["suggestion"]
        return {"kind": "suggested", "suggestion_id": suggestion["id"],
                "content": suggestion["content"]}
    if kind == "memory_exists":
        memory = event["existing"]["memory"]
        return {"kind": "exists", "memory_id": memory["id"], "content": memory["content"]}
    if kind == "contradiction":
        contradiction = event["contradiction"]
        return {"kind": "contradiction", "contradiction_id": contradiction["id"],
                "memory_id": event["memory"]["id"],
                "existing_memory_id": event["existing_memory"]["id"],
                "content": event["memory"]["content"],
                "existing_content": event["existing_memory"]["content"],
                "explanation": contradiction["explanation"]}
    return None


def with_state(conn: Any, outcome: dict) -> dict:
    """`outcome` with "state": for a memory, "kept" or "gone" (deleted, in the trash, or
    replaced) and "changed" when edited since; for a suggestion, its status (pending,
    accepted, dismissed) and the memory an accept made; for a contradiction, pending or
    resolved, and how."""
    shown = dict(outcome)
    kind = outcome.get("kind")
    if kind in ("saved", "exists"):
        memory = store.get_memory(conn, outcome["memory_id"])
        shown["state"] = "gone" if memory is None else "kept"
        shown["changed"] = memory is not None and memory.content != outcome["content"]
    elif kind == "suggested":
        suggestion = review_store.get_suggestion(conn, outcome["suggestion_id"])
        shown["state"] = suggestion.status if suggestion else "gone"
        shown["memory_id"] = suggestion.memory_id if suggestion else None
    elif kind == "contradiction":
        contradiction = review_store.get_contradiction(conn, outcome["contradiction_id"])
        shown["state"] = contradiction.status if contradiction else "gone"
        shown["resolution"] = contradiction.resolution if contradiction else None
    return shown
