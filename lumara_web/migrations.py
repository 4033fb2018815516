"""Numbered schema migrations. Schema changes are history: append a function, never edit one."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from .db import transaction

# The vector table's width; the embedding service refuses a model of another width.
EMBEDDING_DIMENSIONS = 384


def m001_memories_vectors_embedding_cache(conn: Any) -> None:
    conn.execute("""
        CREATE TABLE memories (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: old links stay truthful
            content TEXT NOT NULL CHECK (length(trim(content)) > 0),
            type TEXT NOT NULL CHECK (type IN ('knowledge', 'experience', 'method')),
            tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT 'api',
            metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata))
        )""")
    conn.execute("CREATE INDEX memories_newest ON memories (created_at DESC, id DESC)")
    # type is a vec0 metadata column so a type filter applies during the KNN scan,
    # not after it (which could return fewer than k results).
    conn.execute("""
        CREATE VIRTUAL TABLE memory_vectors USING vec0(
            memory_id INTEGER PRIMARY KEY,
            embedding float[384] distance_metric=cosine,
            type TEXT
        )""")
    conn.execute("""
        CREATE TABLE embedding_cache (
            model_id TEXT NOT NULL,
            text_sha256 BLOB NOT NULL,
            embedding BLOB NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (model_id, text_sha256)
        ) WITHOUT ROWID""")


MIGRATIONS: list[Callable[[Any], None]] = [
    m001_memories_vectors_embedding_cache,
]


def applied_versions(conn: Any) -> set[int]:
    conn.execute("""
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )""")
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def migrate(conn: Any) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied."""
    applied = []
    for version, migration in enumerate(MIGRATIONS, start=1):
        with transaction(conn):
            # Checked inside the write lock: two processes starting at once apply it once.
            if version in applied_versions(conn):
                continue
            migration(conn)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, migration.__name__, datetime.now(timezone.utc).isoformat()))
        applied.append(migration.__name__)
    return applied
