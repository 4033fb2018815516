"""SQL for conversations and their messages. Returns dataclasses; knows nothing of Flask."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .db import transaction
from .store import utc_now


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created_at: str
    updated_at: str
    message_count: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    role: str  # user | assistant
    content: str
    status: str  # complete | stopped | error
    memories: list[dict]  # the receipt: memories the answer was grounded on
    stats: dict
    created_at: str
    # What the turn did besides answering, on its answer: see add_outcome.
    outcomes: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


_CONVERSATION_SELECT = """
    SELECT c.id, c.title, c.created_at, c.updated_at,
           (SELECT count(*) FROM messages AS m WHERE m.conversation_id = c.id)
    FROM conversations AS c"""

_MESSAGE_COLUMNS = ("id, conversation_id, role, content, status, memories, stats, created_at,"
                    " outcomes")


def _conversation(row: Any) -> Conversation:
    return Conversation(*row)


def _message(row: Any) -> Message:
    return Message(id=row[0], conversation_id=row[1], role=row[2], content=row[3],
                   status=row[4], memories=json.loads(row[5]), stats=json.loads(row[6]),
                   created_at=row[7], outcomes=json.loads(row[8]))


def _activity_time(conn: Any) -> str:
    """Now, unless that is not after the latest conversation activity (two writes in one
    millisecond, or the clock stepped back): then 1 ms after it. Keeps "most recently
    active first" a strict order of the writes. Call inside the write transaction."""
    now = utc_now()
    latest = conn.execute("SELECT max(updated_at) FROM conversations").fetchone()[0]
    if latest is None or now > latest:
        return now
    later = datetime.fromisoformat(latest) + timedelta(milliseconds=1)
    return later.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_conversation(conn: Any, title: str) -> Conversation:
    with transaction(conn):
        now = _activity_time(conn)
        cursor = conn.execute(
            "INSERT INTO conversations (title, created_at, updated_at) VALUES (?, ?, ?)",
            (title, now, now))
    return Conversation(cursor.lastrowid, title, now, now, 0)


def get_conversation(conn: Any, conversation_id: int) -> Conversation | None:
    row = conn.execute(f"{_CONVERSATION_SELECT} WHERE c.id = ?", (conversation_id,)).fetchone()
    return None if row is None else _conversation(row)


def list_conversations(conn: Any, *, limit: int = 50,
                       offset: int = 0) -> tuple[list[Conversation], int]:
    """Most recently active first."""
    total = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
    rows = conn.execute(f"{_CONVERSATION_SELECT} ORDER BY c.updated_at DESC, c.id DESC"
                        " LIMIT ? OFFSET ?", (limit, offset))
    return [_conversation(row) for row in rows], total


def rename_conversation(conn: Any, conversation_id: int, title: str) -> Conversation | None:
    """The renamed conversation, or None if there is none with that id. A rename is not
    activity: the conversation keeps its place in the list."""
    with transaction(conn):
        conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))
        return get_conversation(conn, conversation_id)


def delete_conversation(conn: Any, conversation_id: int) -> Conversation | None:
    """Deletes its messages too (ON DELETE CASCADE); suggestions keep, unlinked."""
    with transaction(conn):
        conversation = get_conversation(conn, conversation_id)
        if conversation is not None:
            conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
    return conversation


def add_message(conn: Any, conversation_id: int, role: str, content: str, *,
                status: str = "complete", memories: list[dict] | None = None,
                stats: dict | None = None) -> Message:
    with transaction(conn):
        now = _activity_time(conn)
        cursor = conn.execute(
            "INSERT INTO messages (conversation_id, role, content, status, memories, stats,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, role, content, status, json.dumps(memories or []),
             json.dumps(stats or {}), now))
        conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                     (now, conversation_id))
    return Message(cursor.lastrowid, conversation_id, role, content, status,
                   list(memories or []), dict(stats or {}), now)


def add_outcome(conn: Any, message_id: int, outcome: dict) -> None:
    """Keeps with an answer what its turn did besides answering ({"kind": "saved",
    "memory_id": 7, "content": …}), in order."""
    with transaction(conn):
        conn.execute("UPDATE messages SET outcomes = json_insert(outcomes, '$[#]', json(?))"
                     " WHERE id = ?", (json.dumps(outcome), message_id))


def delete_messages(conn: Any, message_ids: list[int]) -> None:
    with transaction(conn):
        conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in message_ids])


def list_messages(conn: Any, conversation_id: int) -> list[Message]:
    rows = conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?"
                        " ORDER BY id", (conversation_id,))
    return [_message(row) for row in rows]


def recent_messages(conn: Any, conversation_id: int, *, limit: int,
                    before_id: int | None = None) -> list[Message]:
    """The last `limit` messages (before `before_id` if given), oldest first."""
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND id < ?"
        " ORDER BY id DESC LIMIT ?", (conversation_id, before_id or 2**63 - 1, limit))
    return [_message(row) for row in reversed(rows.fetchall())]
