"""Numbered schema migrations. Schema changes are history: append a function, never edit one."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from .db import transaction

# The vector table's width as m001 creates it (all-MiniLM-L6-v2's); it follows the
# embedding model afterwards (store.resize_vectors, when a model of another width loads).
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


def m002_conversations_suggestions_contradictions(conn: Any) -> None:
    conn.execute("""
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    conn.execute("CREATE INDEX conversations_recent ON conversations (updated_at DESC, id DESC)")
    # memories: the answer's receipt, a snapshot [{id, content, type, similarity}] so the
    # history shows what was used even after a memory is edited or deleted.
    conn.execute("""
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'stopped', 'error')),
            memories TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(memories)),
            stats TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(stats)),
            created_at TEXT NOT NULL
        )""")
    conn.execute("CREATE INDEX messages_in_conversation ON messages (conversation_id, id)")
    conn.execute("""
        CREATE TABLE suggestions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            content TEXT NOT NULL CHECK (length(trim(content)) > 0),
            type TEXT NOT NULL CHECK (type IN ('knowledge', 'experience', 'method')),
            tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
            confidence REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'accepted', 'dismissed')),
            conversation_id INTEGER REFERENCES conversations (id) ON DELETE SET NULL,
            message_id INTEGER REFERENCES messages (id) ON DELETE SET NULL,
            memory_id INTEGER REFERENCES memories (id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    conn.execute("CREATE INDEX suggestions_by_status ON suggestions (status, id)")
    # A deleted memory leaves its id NULL here: resolved rows keep their history, and a
    # pending one whose memory is gone is moot (list_contradictions skips it).
    conn.execute("""
        CREATE TABLE contradictions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            memory_id INTEGER REFERENCES memories (id) ON DELETE SET NULL,
            existing_memory_id INTEGER REFERENCES memories (id) ON DELETE SET NULL,
            similarity REAL NOT NULL,
            confidence REAL NOT NULL,
            explanation TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'resolved')),
            resolution TEXT CHECK (resolution IN ('keep_both', 'replace', 'keep_original')),
            created_at TEXT NOT NULL,
            resolved_at TEXT
        )""")
    conn.execute("CREATE INDEX contradictions_by_status ON contradictions (status, id)")


# memory_changes keeps at least this many of the latest changes: every CHANGE_LOG_KEEP-th
# change prunes those older than the last CHANGE_LOG_KEEP (so 10,000–20,000 rows, under
# 0.5 MB). An index (in this process or another) that fell further behind reloads instead.
CHANGE_LOG_KEEP = 10_000


def m003_memory_change_log(conn: Any) -> None:
    """A change log written by triggers, so every write — any connection, any process, any
    code path — tells the in-process vector index (vector_index.py) what to re-read.
    Rolled-back writes roll back their log rows too. vec0 tables cannot have triggers: a
    vector changes only together with its memories row (store.update_memory always sets
    updated_at)."""
    conn.execute("""
        CREATE TABLE memory_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after pruning
            memory_id INTEGER NOT NULL
        )""")
    # One row: every change with seq <= through_seq has been pruned.
    conn.execute("""
        CREATE TABLE memory_changes_pruned (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            through_seq INTEGER NOT NULL
        )""")
    conn.execute("INSERT INTO memory_changes_pruned (id, through_seq) VALUES (1, 0)")
    conn.execute("""
        CREATE TRIGGER memories_logged_insert AFTER INSERT ON memories BEGIN
            INSERT INTO memory_changes (memory_id) VALUES (new.id);
        END""")
    conn.execute("""
        CREATE TRIGGER memories_logged_update AFTER UPDATE ON memories BEGIN
            INSERT INTO memory_changes (memory_id) VALUES (old.id);
            INSERT INTO memory_changes (memory_id) SELECT new.id WHERE new.id != old.id;
        END""")
    conn.execute("""
        CREATE TRIGGER memories_logged_delete AFTER DELETE ON memories BEGIN
            INSERT INTO memory_changes (memory_id) VALUES (old.id);
        END""")
    conn.execute(f"""
        CREATE TRIGGER memory_changes_pruning AFTER INSERT ON memory_changes
        WHEN new.seq % {CHANGE_LOG_KEEP} = 0 BEGIN
            DELETE FROM memory_changes WHERE seq <= new.seq - {CHANGE_LOG_KEEP};
            UPDATE memory_changes_pruned SET through_seq = new.seq - {CHANGE_LOG_KEEP}
                WHERE through_seq < new.seq - {CHANGE_LOG_KEEP};
        END""")


def m004_memory_versions(conn: Any) -> None:
    """Every edit keeps the row as it was: one version per change, numbered from 1 for each
    memory. `change` says what replaced it ('edit' or 'restore'). Deleting a memory deletes
    its versions (ON DELETE CASCADE): memory ids are never reused, so no history can attach
    to a later memory; keeping them for an undo of deletes is left to soft delete."""
    conn.execute("""
        CREATE TABLE memory_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            memory_id INTEGER NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
            version INTEGER NOT NULL CHECK (version > 0),
            content TEXT NOT NULL,
            type TEXT NOT NULL,
            tags TEXT NOT NULL CHECK (json_valid(tags)),
            metadata TEXT NOT NULL CHECK (json_valid(metadata)),
            replaced_at TEXT NOT NULL,
            change TEXT NOT NULL CHECK (change IN ('edit', 'restore')),
            UNIQUE (memory_id, version)
        )""")


def m005_deleted_memories(conn: Any) -> None:
    """The trash: a deleted memory's row under its own id (ids are AUTOINCREMENT, never
    reused, so an undo puts it back under the same id), its vector, its versions (JSON:
    memory_versions rows cascade away with the memory) and the ids of the suggestions and
    contradictions that pointed at it (their links are SET NULL on delete; an undo relinks
    them). Deleted memories leave `memories`, so no other query needs a `deleted` filter."""
    conn.execute("""
        CREATE TABLE deleted_memories (
            id INTEGER PRIMARY KEY,  -- the memory's own id
            content TEXT NOT NULL,
            type TEXT NOT NULL,
            tags TEXT NOT NULL CHECK (json_valid(tags)),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            source TEXT NOT NULL,
            metadata TEXT NOT NULL CHECK (json_valid(metadata)),
            embedding BLOB,  -- NULL only for a memory that had lost its vector
            versions TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(versions)),
            links TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(links)),
            deleted_at TEXT NOT NULL
        )""")
    conn.execute("CREATE INDEX deleted_memories_newest ON deleted_memories (deleted_at DESC, id DESC)")


# Porter stemming over unicode61 words: "renews", "renewal" and "renewing" all match
# "renew", as a person asking means; remove_diacritics 2 folds "café"/"cafe" and "Zürich"/
# "Zurich" (2, not 1: also for letters composed of several code points). Porter only stems
# English; other words still match whole, case- and accent-folded.
KEYWORD_TOKENIZER = "porter unicode61 remove_diacritics 2"


def m006_memory_keywords(conn: Any) -> None:
    """The keyword half of hybrid retrieval (keyword_index.py): an FTS5 index over each
    memory's content and tags. External content (content='memories'): the text is stored
    once, in memories; the index holds only the words. Triggers keep it in step in the same
    transaction as every write, from any connection; a rolled-back write rolls it back too.
    The 'delete' command needs the old values: the triggers pass them."""
    if not conn.execute("SELECT sqlite_compileoption_used('ENABLE_FTS5')").fetchone()[0]:
        from ..errors import DatabaseError

        raise DatabaseError(
            "The SQLite library in use was built without FTS5, which Lumara's keyword "
            "search needs: run Lumara with a Python whose sqlite3 module includes FTS5.",
            code="sqlite_without_fts5")
    conn.execute(f"""
        CREATE VIRTUAL TABLE memory_keywords USING fts5(
            content, tags, content='memories', content_rowid='id',
            tokenize='{KEYWORD_TOKENIZER}'
        )""")
    conn.execute("""
        CREATE TRIGGER memories_keywords_insert AFTER INSERT ON memories BEGIN
            INSERT INTO memory_keywords (rowid, content, tags)
                VALUES (new.id, new.content, new.tags);
        END""")
    conn.execute("""
        CREATE TRIGGER memories_keywords_update AFTER UPDATE OF content, tags ON memories BEGIN
            INSERT INTO memory_keywords (memory_keywords, rowid, content, tags)
                VALUES ('delete', old.id, old.content, old.tags);
            INSERT INTO memory_keywords (rowid, content, tags)
                VALUES (new.id, new.content, new.tags);
        END""")
    conn.execute("""
        CREATE TRIGGER memories_keywords_delete AFTER DELETE ON memories BEGIN
            INSERT INTO memory_keywords (memory_keywords, rowid, content, tags)
                VALUES ('delete', old.id, old.content, old.tags);
        END""")
    # Index the memories already stored.
    conn.execute("INSERT INTO memory_keywords (memory_keywords) VALUES ('rebuild')")


def m007_meta(conn: Any) -> None:
    """Facts about the database itself as key → text (meta_store.py): first, which
    embedding model made the stored vectors, so a start with another model re-embeds them."""
    conn.execute("""
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) WITHOUT ROWID""")


def m008_message_outcomes(conn: Any) -> None:
    """What a turn did besides answering (a memory saved, suggested, found already kept, a
    contradiction raised), kept with its answer so the conversation shows it after a
    reload: a JSON list of {"kind", ids, "content"} (conversation_store.add_outcome)."""
    conn.execute("ALTER TABLE messages ADD COLUMN outcomes TEXT NOT NULL DEFAULT '[]' "
                 "CHECK (json_valid(outcomes))")


MIGRATIONS: list[Callable[[Any], None]] = [
    m001_memories_vectors_embedding_cache,
    m002_conversations_suggestions_contradictions,
    m003_memory_change_log,
    m004_memory_versions,
    m005_deleted_memories,
    m006_memory_keywords,
    m007_meta,
    m008_message_outcomes,
]


def applied_versions(conn: Any) -> set[int]:
    conn.execute("""
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )""")
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def pending_on_existing(conn: Any) -> bool:
    """Does a database that already holds Lumara's schema have migrations to apply? (A new,
    empty file has nothing to lose to a schema change.)"""
    done = applied_versions(conn)
    return bool(done) and any(version not in done
                              for version in range(1, len(MIGRATIONS) + 1))


def migrate(conn: Any, *, before: Callable[[], object] | None = None) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied.
    `before` runs first, once, when an existing database has migrations pending: the backup
    a schema change waits for (storage/backups.py); if it raises, nothing is migrated."""
    if before is not None and pending_on_existing(conn):
        before()
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
