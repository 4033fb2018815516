"""The only place memory SQL lives. Functions take a prepared connection and return dataclasses.

A memory and its vector are always written in one transaction: there is never a memory
without a vector, nor a vector without its memory (except after a change to an embedding
model of another width, until the re-embed that follows gives each its vector).
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from .db import driver, transaction

T = TypeVar("T")


@dataclass(frozen=True)
class Memory:
    id: int
    content: str
    type: str
    tags: list[str]
    created_at: str
    updated_at: str
    source: str
    metadata: dict

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ScoredMemory:
    memory: Memory
    similarity: float

    def to_dict(self) -> dict:
        return {"memory": self.memory.to_dict(), "similarity": round(self.similarity, 4)}


@dataclass(frozen=True)
class MemoryVersion:
    """A memory as it was before a change replaced it (`change`: 'edit' or 'restore')."""
    version: int
    content: str
    type: str
    tags: list[str]
    metadata: dict
    replaced_at: str
    change: str

    def to_dict(self) -> dict:
        return asdict(self)


VERSION_CHANGES = ("edit", "restore")


def vector_to_blob(vector: np.ndarray) -> bytes:
    """Little-endian float32, the layout sqlite-vec reads."""
    return np.asarray(vector, dtype="<f4").tobytes()


def _stored_vector(conn: Any, vector: np.ndarray, width: int | None = None) -> bytes:
    """A vector as `memory_vectors` stores it; one of another width is refused with a clear
    error (the embedding model changed and the table has not followed yet). `width`: the
    table's, when the caller has read it."""
    vector = np.asarray(vector, dtype="<f4").reshape(-1)
    width = width or vector_width(conn)
    if len(vector) != width:
        from ..errors import DatabaseError

        raise DatabaseError(f"This vector has {len(vector)} numbers; the database stores "
                            f"{width}: the embedding model has just changed. Try again in "
                            "a moment.", code="embedding_width_changed")
    return vector.tobytes()


def blob_to_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")


# Values bound per `IN (?, …)` query: 500 stays far below SQLite's bound-parameter limit
# (999 in builds before 3.32), with room for what else the query binds.
CHUNK_SIZE = 500


def chunks(items: Sequence[T], size: int = CHUNK_SIZE) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size`: one query each."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def utc_now() -> str:
    return utc_timestamp(datetime.now(timezone.utc))


def utc_timestamp(moment: datetime) -> str:
    # Millisecond ISO 8601 in UTC: sorts as text and parses in every browser.
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


_COLUMNS = ("id", "content", "type", "tags", "created_at", "updated_at", "source", "metadata")
_MEMORY_COLUMNS = ", ".join(_COLUMNS)
_MEMORY_COLUMNS_AS_M = ", ".join("m." + column for column in _COLUMNS)


def _json_field(text: str, empty: str) -> Any:
    # Most memories have no tags or metadata: skip the parser for the common case.
    return ([] if empty == "[]" else {}) if text == empty else json.loads(text)


def _memory_from_row(row: Any) -> Memory:
    """Columns in _COLUMNS order (by position: faster than by name on the search path)."""
    return Memory(id=row[0], content=row[1], type=row[2], tags=_json_field(row[3], "[]"),
                  created_at=row[4], updated_at=row[5], source=row[6],
                  metadata=_json_field(row[7], "{}"))


def insert_memory(conn: Any, *, content: str, type: str, tags: list[str], embedding: np.ndarray,
                  source: str = "api", metadata: dict | None = None,
                  created_at: str | None = None, updated_at: str | None = None) -> Memory:
    """`created_at`/`updated_at` default to now (given: an imported memory keeps its own)."""
    now = utc_now()
    created_at = created_at or now
    updated_at = updated_at or created_at
    with transaction(conn):
        memory_id = _insert_row(conn, content, type, tags, created_at, updated_at, source,
                                metadata, _stored_vector(conn, embedding))
    return Memory(id=memory_id, content=content, type=type, tags=list(tags),
                  created_at=created_at, updated_at=updated_at, source=source,
                  metadata=dict(metadata or {}))


@dataclass(frozen=True)
class NewStoredMemory:
    """A memory to insert as it comes (an import's): its own dates (None: now), its vector
    and its earlier versions."""
    content: str
    type: str
    tags: list[str]
    embedding: np.ndarray
    source: str = "api"
    metadata: dict = field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None
    versions: tuple[MemoryVersion, ...] = ()


def insert_memories(conn: Any, memories: Iterable[NewStoredMemory]) -> list[int]:
    """Insert them in order, in one transaction (joined if one is open), with their
    versions; their ids. The rows insert_memory and insert_versions write, with the vector
    width read once: an import's writing holds the write lock, so each row's cost is what
    other writers wait."""
    ids = []
    with transaction(conn):
        width = vector_width(conn)
        now = utc_now()
        for memory in memories:
            created_at = memory.created_at or now
            ids.append(_insert_row(conn, memory.content, memory.type, memory.tags, created_at,
                                   memory.updated_at or created_at, memory.source,
                                   memory.metadata, _stored_vector(conn, memory.embedding,
                                                                   width)))
            if memory.versions:
                insert_versions(conn, ids[-1], memory.versions)
    return ids


def _insert_row(conn: Any, content: str, type: str, tags: list[str], created_at: str,
                updated_at: str, source: str, metadata: dict | None, vector: bytes) -> int:
    cursor = conn.execute(
        "INSERT INTO memories (content, type, tags, created_at, updated_at, source, metadata)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (content, type, json.dumps(tags), created_at, updated_at, source,
         json.dumps(metadata or {})))
    conn.execute("INSERT INTO memory_vectors (memory_id, embedding, type) VALUES (?, ?, ?)",
                 (cursor.lastrowid, vector, type))
    return cursor.lastrowid


def update_memory(conn: Any, memory_id: int, *, content: str | None = None,
                  type: str | None = None, tags: list[str] | None = None,
                  metadata: dict | None = None, embedding: np.ndarray | None = None,
                  change: str = "edit") -> Memory | None:
    """Change the given fields; new content must come with its new embedding. When a field
    really changes, the row as it was is kept in memory_versions (same transaction), marked
    with `change` ('edit', or 'restore' for store-level callers restoring a version)."""
    if (content is None) != (embedding is None):
        raise ValueError("content and its embedding change together")
    if change not in VERSION_CHANGES:
        raise ValueError(f"change must be one of {VERSION_CHANGES}, not {change!r}")
    with transaction(conn):
        current = get_memory(conn, memory_id)
        if current is None:
            return None
        now = utc_now()
        if ((content is not None and content != current.content)
                or (type is not None and type != current.type)
                or (tags is not None and tags != current.tags)
                or (metadata is not None and metadata != current.metadata)):
            _keep_version(conn, current, replaced_at=now, change=change)
        changes = {"content": content, "type": type,
                   "tags": None if tags is None else json.dumps(tags),
                   "metadata": None if metadata is None else json.dumps(metadata)}
        changes = {column: value for column, value in changes.items() if value is not None}
        changes["updated_at"] = now
        assignments = ", ".join(f"{column} = ?" for column in changes)
        conn.execute(f"UPDATE memories SET {assignments} WHERE id = ?",
                     (*changes.values(), memory_id))
        stored = None
        if embedding is None and type is not None:
            stored = conn.execute("SELECT embedding FROM memory_vectors WHERE memory_id = ?",
                                  (memory_id,)).fetchone()
        # A memory without a vector (a damaged database: start-up reports it) keeps none
        # when only its type changes.
        if embedding is not None or stored is not None:
            # vec0 rows are replaced whole: delete then insert keeps vector and type in step.
            vector = embedding if embedding is not None else blob_to_vector(stored[0])
            conn.execute("DELETE FROM memory_vectors WHERE memory_id = ?", (memory_id,))
            conn.execute(
                "INSERT INTO memory_vectors (memory_id, embedding, type) VALUES (?, ?, ?)",
                (memory_id, _stored_vector(conn, vector), type or current.type))
        return get_memory(conn, memory_id)


def _keep_version(conn: Any, memory: Memory, *, replaced_at: str, change: str) -> None:
    conn.execute(
        "INSERT INTO memory_versions"
        " (memory_id, version, content, type, tags, metadata, replaced_at, change)"
        " SELECT ?, coalesce(max(version), 0) + 1, ?, ?, ?, ?, ?, ?"
        " FROM memory_versions WHERE memory_id = ?",
        (memory.id, memory.content, memory.type, json.dumps(memory.tags),
         json.dumps(memory.metadata), replaced_at, change, memory.id))


_VERSION_COLUMNS = "version, content, type, tags, metadata, replaced_at, change"


def _version_from_row(row: Any) -> MemoryVersion:
    return MemoryVersion(version=row[0], content=row[1], type=row[2],
                         tags=_json_field(row[3], "[]"), metadata=_json_field(row[4], "{}"),
                         replaced_at=row[5], change=row[6])


def list_versions(conn: Any, memory_id: int) -> list[MemoryVersion]:
    """A memory's earlier versions, newest first (empty for a memory never changed)."""
    rows = conn.execute(f"SELECT {_VERSION_COLUMNS} FROM memory_versions WHERE memory_id = ?"
                        " ORDER BY version DESC", (memory_id,))
    return [_version_from_row(row) for row in rows]


def get_version(conn: Any, memory_id: int, version: int) -> MemoryVersion | None:
    row = conn.execute(f"SELECT {_VERSION_COLUMNS} FROM memory_versions"
                       " WHERE memory_id = ? AND version = ?", (memory_id, version)).fetchone()
    return None if row is None else _version_from_row(row)


def insert_versions(conn: Any, memory_id: int, versions: Iterable[MemoryVersion]) -> None:
    """Put back a memory's earlier versions as they were numbered (an import restoring the
    history it exported); the next edit continues after the highest number."""
    with transaction(conn):
        conn.executemany(
            f"INSERT INTO memory_versions (memory_id, {_VERSION_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(memory_id, v.version, v.content, v.type, json.dumps(v.tags),
              json.dumps(v.metadata), v.replaced_at, v.change) for v in versions])


def delete_memory(conn: Any, memory_id: int) -> Memory | None:
    """Move the memory to the trash (deleted_memories): in one transaction its row, vector,
    versions and the ids of what linked to it are copied there, then the memory and its
    vector leave (versions by ON DELETE CASCADE). restore_deleted_memory undoes it."""
    with transaction(conn):
        memory = get_memory(conn, memory_id)
        if memory is None:
            return None
        vector = conn.execute("SELECT embedding FROM memory_vectors WHERE memory_id = ?",
                              (memory_id,)).fetchone()
        versions = [version.to_dict() for version in reversed(list_versions(conn, memory_id))]
        conn.execute(
            f"INSERT INTO deleted_memories ({_MEMORY_COLUMNS}, embedding, versions, links,"
            " deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (memory.id, memory.content, memory.type, json.dumps(memory.tags),
             memory.created_at, memory.updated_at, memory.source, json.dumps(memory.metadata),
             None if vector is None else vector[0], json.dumps(versions),
             json.dumps(_links_to(conn, memory_id)), utc_now()))
        conn.execute("DELETE FROM memory_vectors WHERE memory_id = ?", (memory_id,))
        conn.execute("DELETE FROM memories WHERE id = ?", (memory_id,))
    return memory


# What points at a memory and is SET NULL when it is deleted: (table, column) by link name.
_LINKS = {"suggestions": ("suggestions", "memory_id"),
          "contradictions": ("contradictions", "memory_id"),
          "contradictions_existing": ("contradictions", "existing_memory_id")}


def _links_to(conn: Any, memory_id: int) -> dict[str, list[int]]:
    links = {}
    for name, (table, column) in _LINKS.items():
        ids = [row[0] for row in conn.execute(
            f"SELECT id FROM {table} WHERE {column} = ? ORDER BY id", (memory_id,))]
        if ids:
            links[name] = ids
    return links


@dataclass(frozen=True)
class DeletedMemory:
    """A memory in the trash, as it was when deleted."""
    memory: Memory
    deleted_at: str
    version_count: int

    def to_dict(self) -> dict:
        return {**self.memory.to_dict(), "deleted_at": self.deleted_at,
                "version_count": self.version_count}


_DELETED_COLUMNS = f"{_MEMORY_COLUMNS}, deleted_at, json_array_length(versions)"


def _deleted_from_row(row: Any) -> DeletedMemory:
    return DeletedMemory(_memory_from_row(row), deleted_at=row[8], version_count=row[9])


def list_deleted_memories(conn: Any, *, limit: int = 50,
                          offset: int = 0) -> tuple[list[DeletedMemory], int]:
    """The trash, most recently deleted first, with its total (for paging)."""
    total = conn.execute("SELECT count(*) FROM deleted_memories").fetchone()[0]
    rows = conn.execute(f"SELECT {_DELETED_COLUMNS} FROM deleted_memories"
                        " ORDER BY deleted_at DESC, id DESC LIMIT ? OFFSET ?", (limit, offset))
    return [_deleted_from_row(row) for row in rows], total


def get_deleted_memory(conn: Any, memory_id: int) -> DeletedMemory | None:
    row = conn.execute(f"SELECT {_DELETED_COLUMNS} FROM deleted_memories WHERE id = ?",
                       (memory_id,)).fetchone()
    return None if row is None else _deleted_from_row(row)


def restore_deleted_memory(conn: Any, memory_id: int) -> Memory | None:
    """Put a memory from the trash back, in one transaction: same id and timestamps, its
    vector, its versions, and its links where nothing else took their place. None when
    the trash holds no such memory (restored already, purged, or never deleted)."""
    with transaction(conn):
        row = conn.execute(
            f"SELECT {_MEMORY_COLUMNS}, embedding, versions, links FROM deleted_memories"
            " WHERE id = ?", (memory_id,)).fetchone()
        if row is None:
            return None
        memory = _memory_from_row(row)
        conn.execute(f"INSERT INTO memories ({_MEMORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     tuple(row[:8]))
        if row[8] is not None:
            conn.execute(
                "INSERT INTO memory_vectors (memory_id, embedding, type) VALUES (?, ?, ?)",
                (memory_id, row[8], memory.type))
        insert_versions(conn, memory_id,
                        [MemoryVersion(**version) for version in json.loads(row[9])])
        for name, ids in json.loads(row[10]).items():
            table, column = _LINKS[name]
            conn.executemany(f"UPDATE {table} SET {column} = ? WHERE id = ? AND {column} IS NULL",
                             [(memory_id, link_id) for link_id in ids])
        conn.execute("DELETE FROM deleted_memories WHERE id = ?", (memory_id,))
    return memory


def purge_deleted_memory(conn: Any, memory_id: int) -> bool:
    """Delete a memory from the trash for good; False when it is not there."""
    with transaction(conn):
        return conn.execute("DELETE FROM deleted_memories WHERE id = ?",
                            (memory_id,)).rowcount > 0


def purge_trash(conn: Any, *, deleted_before: str | None = None) -> int:
    """Empty the trash (or only what was deleted before the `deleted_before` timestamp, in
    utc_now's format); returns how many memories were deleted for good."""
    with transaction(conn):
        if deleted_before is None:
            return conn.execute("DELETE FROM deleted_memories").rowcount
        return conn.execute("DELETE FROM deleted_memories WHERE deleted_at < ?",
                            (deleted_before,)).rowcount


def purge_trash_older_than(conn: Any, days: int) -> int:
    """The start-up clean-up: what was deleted more than `days` days ago (0: keep all)."""
    if days <= 0:
        return 0
    cutoff = datetime.now(timezone.utc) - timedelta(days=days)
    return purge_trash(conn, deleted_before=utc_timestamp(cutoff))


def get_memory(conn: Any, memory_id: int) -> Memory | None:
    row = conn.execute(f"SELECT {_MEMORY_COLUMNS} FROM memories WHERE id = ?",
                       (memory_id,)).fetchone()
    return None if row is None else _memory_from_row(row)


def list_memories(conn: Any, *, type: str | None = None, tag: str | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[list[Memory], int]:
    """Newest first, with the total that matches the filters (for paging)."""
    where, params = [], []
    if type:
        where.append("type = ?")
        params.append(type)
    if tag:
        where.append("EXISTS (SELECT 1 FROM json_each(memories.tags) WHERE value = ?)")
        params.append(tag)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT count(*) FROM memories {clause}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {_MEMORY_COLUMNS} FROM memories {clause}"
        " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?", (*params, limit, offset))
    return [_memory_from_row(row) for row in rows], total


def count_memories(conn: Any) -> int:
    return conn.execute("SELECT count(*) FROM memories").fetchone()[0]


_VECTOR_WIDTH = re.compile(r"float\[(\d+)\]")


def vector_width(conn: Any) -> int:
    """The width of the vectors `memory_vectors` holds (that of the model that made them)."""
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'memory_vectors'"
                       ).fetchone()[0]
    return int(_VECTOR_WIDTH.search(sql).group(1))


def resize_vectors(conn: Any, width: int) -> None:
    """Make `memory_vectors` hold vectors of `width`, dropping the vectors it holds (they
    come from a model of another width; the caller re-embeds). The change log is marked
    pruned through this point, so every vector index — any process — reloads."""
    with transaction(conn):
        conn.execute("DROP TABLE memory_vectors")
        conn.execute(f"""
            CREATE VIRTUAL TABLE memory_vectors USING vec0(
                memory_id INTEGER PRIMARY KEY,
                embedding float[{int(width)}] distance_metric=cosine,
                type TEXT
            )""")
        conn.execute("INSERT INTO memory_changes (memory_id) VALUES (0)")
        conn.execute("UPDATE memory_changes_pruned SET through_seq = last_insert_rowid()")


def nearest_memories(conn: Any, embedding: np.ndarray, *, k: int,
                     type: str | None = None) -> list[ScoredMemory]:
    """The k memories closest to `embedding` by cosine, most similar first."""
    type_filter = "AND type = :type" if type else ""
    rows = conn.execute(f"""
        WITH knn AS (
            SELECT memory_id, distance FROM memory_vectors
            WHERE embedding MATCH :query AND k = :k {type_filter}
        )
        SELECT {_MEMORY_COLUMNS_AS_M}, knn.distance
        FROM knn JOIN memories AS m ON m.id = knn.memory_id
        ORDER BY knn.distance""",
        {"query": vector_to_blob(embedding), "k": k, "type": type})
    return [ScoredMemory(_memory_from_row(row), 1.0 - row[8]) for row in rows]


def contents_by_id(conn: Any, ids: list[int]) -> dict[int, str]:
    """The contents of the memories among `ids` that exist (a lighter memories_by_id)."""
    found: dict[int, str] = {}
    for chunk in chunks(ids):
        found.update(conn.execute(f"SELECT id, content FROM memories"
                                  f" WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
    return found


def memories_by_id(conn: Any, ids: list[int]) -> dict[int, Memory]:
    """The memories among `ids` that exist (ids of deleted ones are simply absent)."""
    found: dict[int, Memory] = {}
    for chunk in chunks(ids):
        rows = conn.execute(f"SELECT {_MEMORY_COLUMNS} FROM memories"
                            f" WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        found.update((row[0], _memory_from_row(row)) for row in rows)
    return found


def memory_similarities(conn: Any, embedding: np.ndarray, ids: list[int]) -> dict[int, float]:
    """Cosine similarity of `embedding` to each stored vector among `ids` (≈ 0.3 ms per id:
    vec0 reads whole chunks; hybrid retrieval uses it only while the vector index loads)."""
    found: dict[int, float] = {}
    for chunk in chunks(ids):
        rows = conn.execute(
            "SELECT memory_id, 1.0 - vec_distance_cosine(embedding, ?) FROM memory_vectors"
            f" WHERE memory_id IN ({', '.join('?' * len(chunk))})",
            (vector_to_blob(embedding), *chunk))
        found.update((row[0], row[1]) for row in rows)
    return found


# -- for the keyword index (search/keyword_index.py builds the MATCH expressions) ---------
def keyword_match_count(conn: Any, expression: str, cap: int) -> int:
    """How many memories match the FTS5 `expression`, counting no further than `cap`."""
    return conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM memory_keywords WHERE memory_keywords MATCH ?"
        " LIMIT ?)", (expression, cap)).fetchone()[0]


def keyword_matches(conn: Any, expression: str, *, limit: int,
                    type: str | None = None) -> list[tuple[int, float]]:
    """(memory id, BM25 score) of the `limit` best matches of the FTS5 `expression`, best
    first. FTS5's rank (bm25()) is lower for better matches: the score is its negation."""
    if type:
        rows = conn.execute(
            "SELECT k.rowid, -k.rank FROM memory_keywords AS k"
            " JOIN memories AS m ON m.id = k.rowid"
            " WHERE memory_keywords MATCH ? AND m.type = ? ORDER BY k.rank LIMIT ?",
            (expression, type, limit))
    else:
        rows = conn.execute(
            "SELECT rowid, -rank FROM memory_keywords WHERE memory_keywords MATCH ?"
            " ORDER BY rank LIMIT ?", (expression, limit))
    return [(row[0], row[1]) for row in rows]


# -- for the in-process vector index (vector_index.py) ------------------------------------
@contextmanager
def read_snapshot(conn: Any) -> Iterator[Any]:
    """A read transaction: every query inside sees the same committed state."""
    conn.execute("BEGIN DEFERRED")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def database_file(conn: Any) -> str:
    """The file of the connection's main database ("" for one in memory)."""
    return conn.execute("PRAGMA database_list").fetchone()[2]


def memory_change_seq(conn: Any) -> int:
    """The last change-log position (0 before the first change)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'memory_changes'").fetchone()
    return 0 if row is None else row[0]


def restart_change_log(conn: Any, past: int) -> int:
    """After the database was replaced whole (a restore): empty the change log and mark every
    position up to past `past` as pruned, so each vector index (of any process) that had
    followed the old history reloads instead of applying changes of another history.
    `past` must exceed every position the old history reached. Returns the new position."""
    with transaction(conn):
        seq = max(past, memory_change_seq(conn)) + 1
        conn.execute("DELETE FROM memory_changes")
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'memory_changes'")
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('memory_changes', ?)",
                     (seq,))
        conn.execute("UPDATE memory_changes_pruned SET through_seq = ?", (seq,))
    return seq


def memory_changes_since(conn: Any, seq: int) -> tuple[list[tuple[int, int]], bool]:
    """(seq, memory_id) of the changes after `seq`, and whether some of them were pruned
    (then the list is incomplete and the caller must reload)."""
    rows = conn.execute(
        "SELECT seq, memory_id FROM memory_changes WHERE seq > :seq"
        " UNION ALL SELECT -1, through_seq FROM memory_changes_pruned WHERE through_seq > :seq",
        {"seq": seq}).fetchall()
    if any(row[0] == -1 for row in rows):
        return [], True
    return [(row[0], row[1]) for row in rows], False


def memory_vector_states(conn: Any,
                         ids: list[int]) -> tuple[list[int], list[bytes], list[str]]:
    """Ids, vector blobs and types of the memories among `ids` that exist now."""
    found_ids, blobs, types = [], [], []
    for chunk in chunks(ids):
        rows = conn.execute(
            "SELECT m.id, v.embedding, m.type FROM memories AS m"
            " JOIN memory_vectors AS v ON v.memory_id = m.id"
            f" WHERE m.id IN ({', '.join('?' * len(chunk))})", chunk)
        for memory_id, blob, type in rows:
            found_ids.append(memory_id)
            blobs.append(blob)
            types.append(type)
    return found_ids, blobs, types


def memory_types(conn: Any) -> tuple[list[int], list[str]]:
    """Every memory's id and type, by id."""
    ids, types = [], []
    for memory_id, type in conn.execute("SELECT id, type FROM memories ORDER BY id"):
        ids.append(memory_id)
        types.append(type)
    return ids, types


def sample_memory_ids(conn: Any, count: int, seed: int = 0) -> list[int]:
    """Up to `count` memory ids spread over the id range: for each of `count` seeded random
    points, the first id at or after it (index seeks, no scan at any size)."""
    low, high = conn.execute("SELECT min(id), max(id) FROM memories").fetchone()
    if low is None:
        return []
    points = np.random.default_rng(seed).integers(low, high + 1, size=count)
    found = {conn.execute("SELECT id FROM memories WHERE id >= ? ORDER BY id LIMIT 1",
                          (int(point),)).fetchone()[0] for point in points}
    return sorted(found)


def iter_memory_vectors(conn: Any, batch: int) -> Iterator[tuple[list[int], list[bytes]]]:
    """Every (memory_id, vector blob), `batch` at a time."""
    cursor = conn.execute("SELECT memory_id, embedding FROM memory_vectors")
    while rows := cursor.fetchmany(batch):
        yield [row[0] for row in rows], [row[1] for row in rows]


def get_cached_embeddings(conn: Any, model_id: str,
                          hashes: Iterable[bytes]) -> dict[bytes, np.ndarray]:
    hashes = list(hashes)
    found: dict[bytes, np.ndarray] = {}
    for chunk in chunks(hashes):
        rows = conn.execute(
            "SELECT text_sha256, embedding FROM embedding_cache WHERE model_id = ?"
            f" AND text_sha256 IN ({', '.join('?' * len(chunk))})", (model_id, *chunk))
        found.update((bytes(digest), blob_to_vector(blob)) for digest, blob in rows)
    return found


def put_cached_embeddings(conn: Any, model_id: str,
                          items: Iterable[tuple[bytes, np.ndarray]]) -> None:
    now = utc_now()
    with transaction(conn):
        conn.executemany(
            "INSERT OR IGNORE INTO embedding_cache (model_id, text_sha256, embedding, created_at)"
            " VALUES (?, ?, ?, ?)",
            [(model_id, digest, vector_to_blob(vector), now) for digest, vector in items])


# Row ids quoted in a problem's message; the rest are counted.
MAX_QUOTED = 5


@dataclass(frozen=True)
class Integrity:
    """What an integrity check found: SQLite's own findings on the file, and the ids of
    memories without a vector and of vectors without a memory."""

    file_findings: list[str]
    memories_without_vector: list[int]
    vectors_without_memory: list[int]
    damaged_tables: list[str]

    def problems(self) -> list[str]:
        """One sentence each for a person: what is wrong, where, what to do."""
        problems = []
        if self.file_findings:
            where = f" in {', '.join(self.damaged_tables)}" if self.damaged_tables else ""
            problems.append(
                f"The database file is damaged{where}: SQLite's check found "
                f"{_count(len(self.file_findings), 'problem')}, the first: "
                f"{self.file_findings[0]}."
                " Stop Lumara, keep a copy of the file and restore it from a backup; until"
                " then some memories may be missing or fail to load.")
        missing = self.memories_without_vector
        if missing:
            problems.append(
                f"{_count(len(missing), 'memory', 'memories')} "
                f"{'has' if len(missing) == 1 else 'have'} no vector (id "
                f"{_quoted(missing)}), so search and chat cannot find "
                f"{'it' if len(missing) == 1 else 'them'}: delete and add "
                f"{'it' if len(missing) == 1 else 'them'} again.")
        orphans = self.vectors_without_memory
        if orphans:
            problems.append(
                f"{_count(len(orphans), 'vector')} belong{'s' if len(orphans) == 1 else ''} to "
                f"no memory (memory id {_quoted(orphans)}): search skips "
                f"{'it' if len(orphans) == 1 else 'them'}; no memory is affected.")
        return problems


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def _quoted(items: list) -> str:
    shown = ", ".join(str(item) for item in items[:MAX_QUOTED])
    return shown + (f" and {len(items) - MAX_QUOTED} more" if len(items) > MAX_QUOTED else "")


def check_integrity(conn: Any, *, quick: bool = False) -> Integrity:
    """Check the file (quick_check skips index contents: fast enough for every start-up)
    and the memory/vector pairing. A file SQLite cannot read at all raises its error."""
    pragma = "quick_check" if quick else "integrity_check"
    findings = [line for row in conn.execute(f"PRAGMA {pragma}") for line in row[0].splitlines()
                if line not in ("ok", "*** in database main ***")]
    # Findings name b-trees by their root page ("Tree 10 page 10 cell 0: ...").
    roots = {int(root) for line in findings for root in re.findall(r"\bTree (\d+)\b", line)}
    damaged_tables: list[str] = []
    missing: list[int] = []
    orphans: list[int] = []
    try:
        if roots:
            damaged_tables = [row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE rootpage IN"
                f" ({', '.join('?' * len(roots))}) ORDER BY name", sorted(roots))]
        missing = [row[0] for row in conn.execute(
            "SELECT id FROM memories WHERE id NOT IN (SELECT memory_id FROM memory_vectors)"
            " ORDER BY id")]
        orphans = [row[0] for row in conn.execute(
            "SELECT memory_id FROM memory_vectors WHERE memory_id NOT IN"
            " (SELECT id FROM memories) ORDER BY memory_id")]
    except driver()[0].DatabaseError as error:  # a damaged table the check also reported
        findings.append(f"could not compare memories with vectors: {error}")
    return Integrity(findings, missing, orphans, damaged_tables)


def integrity_problems(conn: Any, *, quick: bool = False) -> list[str]:
    """Short facts about what is wrong with the file or the memory/vector pairing; empty
    when all is well (`check_integrity(...).problems()` explains them to a person)."""
    integrity = check_integrity(conn, quick=quick)
    problems = list(integrity.file_findings)
    if integrity.memories_without_vector:
        problems.append(f"{len(integrity.memories_without_vector)} memories have no vector")
    if integrity.vectors_without_memory:
        problems.append(f"{len(integrity.vectors_without_memory)} vectors have no memory")
    return problems


def collection_stats(conn: Any) -> dict:
    """What the database holds, in counts (for `python -m lumara_web stats`)."""
    def count(sql: str) -> int:
        return conn.execute(sql).fetchone()[0]

    by_type = dict(conn.execute("SELECT type, count(*) FROM memories GROUP BY type ORDER BY type"))
    return {
        "memories": sum(by_type.values()),
        "memories_by_type": by_type,
        "vectors": count("SELECT count(*) FROM memory_vectors"),
        "conversations": count("SELECT count(*) FROM conversations"),
        "messages": count("SELECT count(*) FROM messages"),
        "pending_suggestions": count("SELECT count(*) FROM suggestions WHERE status = 'pending'"),
        "pending_contradictions": count(
            "SELECT count(*) FROM contradictions WHERE status = 'pending'"),
        "cached_embeddings": count("SELECT count(*) FROM embedding_cache"),
        "deleted_memories": count("SELECT count(*) FROM deleted_memories"),
    }


def memory_contents(conn: Any) -> list[tuple[int, str]]:
    """Every memory's id and content, oldest first (for re-embedding)."""
    return [(row[0], row[1]) for row in conn.execute("SELECT id, content FROM memories ORDER BY id")]


def replace_vectors(conn: Any, vectors: Iterable[tuple[int, str, np.ndarray]]) -> int:
    """Store new vectors for (memory id, the content they were made from); a memory deleted
    or edited since is skipped (an edit wrote its own fresh vector). Returns how many were
    replaced. The memories rows do not change, so the change log is written here: vec0
    tables have no triggers, and the vector index must re-read these vectors."""
    replaced = 0
    with transaction(conn):
        for memory_id, content, vector in vectors:
            row = conn.execute("SELECT type FROM memories WHERE id = ? AND content = ?",
                               (memory_id, content)).fetchone()
            if row is None:
                continue
            conn.execute("DELETE FROM memory_vectors WHERE memory_id = ?", (memory_id,))
            conn.execute(
                "INSERT INTO memory_vectors (memory_id, embedding, type) VALUES (?, ?, ?)",
                (memory_id, _stored_vector(conn, vector), row[0]))
            conn.execute("INSERT INTO memory_changes (memory_id) VALUES (?)", (memory_id,))
            replaced += 1
    return replaced
