"""SQL for facts about the database itself, kept as key → text rows in the `meta` table
(migration m007): which embedding model made the stored vectors, the database's identity."""

from __future__ import annotations

import uuid
from typing import Any

from .db import transaction
from .store import utc_now

# The model id of the stored vectors: a search compares a query vector with them, so both must
# come from one model. Written when every vector is known to come from it (a fresh database,
# or a finished re-embed).
VECTORS_MODEL = "vectors_model"
# A random id given once, when the database is first prepared: what a file kept beside the
# database (the saved vector index) was made from. A copy (a backup) keeps it.
DATABASE_ID = "database_id"


def get_value(conn: Any, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def set_value(conn: Any, key: str, value: str) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO meta (key, value, updated_at) VALUES (?, ?, ?)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                     " updated_at = excluded.updated_at", (key, value, utc_now()))


def set_value_if_absent(conn: Any, key: str, value: str) -> str:
    """Record `value` unless the key already has one; returns the value now stored."""
    with transaction(conn):
        conn.execute("INSERT OR IGNORE INTO meta (key, value, updated_at) VALUES (?, ?, ?)",
                     (key, value, utc_now()))
        return get_value(conn, key)


def database_id(conn: Any) -> str:
    """This database's identity, given on first use."""
    return set_value_if_absent(conn, DATABASE_ID, uuid.uuid4().hex)
