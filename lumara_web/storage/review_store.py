"""SQL for what waits on the user's judgement: suggested memories and contradictions."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from .db import transaction
from .store import utc_now

# The values the tables' CHECK constraints allow.
SUGGESTION_STATUSES = ("pending", "accepted", "dismissed")
CONTRADICTION_STATUSES = ("pending", "resolved")
RESOLUTIONS = ("keep_both", "replace", "keep_original")


@dataclass(frozen=True)
class Suggestion:
    id: int
    content: str
    type: str
    tags: list[str]
    confidence: float
    status: str  # pending | accepted | dismissed
    conversation_id: int | None
    message_id: int | None
    memory_id: int | None  # the memory made when accepted
    created_at: str
    updated_at: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Contradiction:
    id: int
    memory_id: int | None  # the newer memory (None once deleted)
    existing_memory_id: int | None  # the one it seems to contradict
    similarity: float
    confidence: float
    explanation: str
    status: str  # pending | resolved
    resolution: str | None  # keep_both | replace | keep_original
    created_at: str
    resolved_at: str | None

    def to_dict(self) -> dict:
        return asdict(self)


_SUGGESTION_COLUMNS = ("id, content, type, tags, confidence, status, conversation_id, "
                       "message_id, memory_id, created_at, updated_at")
_CONTRADICTION_COLUMNS = ("id, memory_id, existing_memory_id, similarity, confidence, "
                          "explanation, status, resolution, created_at, resolved_at")


def _suggestion(row: Any) -> Suggestion:
    values = list(row)
    values[3] = json.loads(values[3])
    return Suggestion(*values)


def add_suggestion(conn: Any, *, content: str, type: str, tags: list[str], confidence: float,
                   conversation_id: int | None = None,
                   message_id: int | None = None) -> Suggestion:
    now = utc_now()
    with transaction(conn):
        cursor = conn.execute(
            "INSERT INTO suggestions (content, type, tags, confidence, conversation_id,"
            " message_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (content, type, json.dumps(tags), confidence, conversation_id, message_id, now, now))
    return get_suggestion(conn, cursor.lastrowid)


def get_suggestion(conn: Any, suggestion_id: int) -> Suggestion | None:
    row = conn.execute(f"SELECT {_SUGGESTION_COLUMNS} FROM suggestions WHERE id = ?",
                       (suggestion_id,)).fetchone()
    return None if row is None else _suggestion(row)


def list_suggestions(conn: Any, *, status: str | None = "pending") -> list[Suggestion]:
    where, params = ("WHERE status = ?", (status,)) if status else ("", ())
    rows = conn.execute(f"SELECT {_SUGGESTION_COLUMNS} FROM suggestions {where}"
                        " ORDER BY id DESC", params)
    return [_suggestion(row) for row in rows]


def settle_suggestion(conn: Any, suggestion_id: int, status: str,
                      memory_id: int | None = None) -> Suggestion | None:
    """Mark a pending suggestion accepted or dismissed; None if it was not pending."""
    with transaction(conn):
        cursor = conn.execute(
            "UPDATE suggestions SET status = ?, memory_id = ?, updated_at = ?"
            " WHERE id = ? AND status = 'pending'",
            (status, memory_id, utc_now(), suggestion_id))
    return get_suggestion(conn, suggestion_id) if cursor.rowcount else None


def reopen_suggestion(conn: Any, suggestion_id: int) -> Suggestion | None:
    """Put a settled suggestion back to pending (Undo of accept or dismiss); None if it was
    pending already."""
    with transaction(conn):
        cursor = conn.execute(
            "UPDATE suggestions SET status = 'pending', memory_id = NULL, updated_at = ?"
            " WHERE id = ? AND status != 'pending'", (utc_now(), suggestion_id))
    return get_suggestion(conn, suggestion_id) if cursor.rowcount else None


def add_contradiction(conn: Any, *, memory_id: int, existing_memory_id: int, similarity: float,
                      confidence: float, explanation: str) -> Contradiction:
    with transaction(conn):
        cursor = conn.execute(
            "INSERT INTO contradictions (memory_id, existing_memory_id, similarity, confidence,"
            " explanation, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (memory_id, existing_memory_id, similarity, confidence, explanation, utc_now()))
    return get_contradiction(conn, cursor.lastrowid)


def get_contradiction(conn: Any, contradiction_id: int) -> Contradiction | None:
    row = conn.execute(f"SELECT {_CONTRADICTION_COLUMNS} FROM contradictions WHERE id = ?",
                       (contradiction_id,)).fetchone()
    return None if row is None else Contradiction(*row)


def list_contradictions(conn: Any, *, status: str | None = "pending") -> list[Contradiction]:
    """Pending ones only while both memories still exist."""
    where, params = ("", ())
    if status == "pending":
        where, params = ("WHERE status = 'pending' AND memory_id IS NOT NULL"
                         " AND existing_memory_id IS NOT NULL", ())
    elif status:
        where, params = "WHERE status = ?", (status,)
    rows = conn.execute(f"SELECT {_CONTRADICTION_COLUMNS} FROM contradictions {where}"
                        " ORDER BY id DESC", params)
    return [Contradiction(*row) for row in rows]


def mark_contradiction_resolved(conn: Any, contradiction_id: int,
                                resolution: str) -> Contradiction | None:
    """Record the resolution; None if it was not pending. Call inside the transaction
    that carries the resolution out (db.transaction joins), so both happen or neither."""
    with transaction(conn):
        cursor = conn.execute(
            "UPDATE contradictions SET status = 'resolved', resolution = ?, resolved_at = ?"
            " WHERE id = ? AND status = 'pending'", (resolution, utc_now(), contradiction_id))
    return get_contradiction(conn, contradiction_id) if cursor.rowcount else None
