"""Adding, checking, editing, deleting and searching memories: the rules between the API
and the store. Plain Python: takes validated values and a connection, knows no Flask."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import NotFound
from ..inference.embeddings import EmbeddingService
from ..observability.perf import PerfMonitor
from ..search import aliases, retrieval
from ..search.vector_index import VectorIndex
from ..storage import store
from ..storage.store import DeletedMemory, Memory, MemoryVersion, ScoredMemory
from . import findings as insights
from .findings import Findings
from .validation import ListQuery, MemoryPatch, NewMemory, Page, SearchQuery


@dataclass(frozen=True)
class SearchResult:
    hits: list[ScoredMemory]
    embed_ms: float
    search_ms: float

    def to_dict(self) -> dict:
        return {"results": [hit.to_dict() for hit in self.hits],
                "took_ms": round(self.embed_ms + self.search_ms, 3),
                "timings": {"embed_ms": round(self.embed_ms, 3),
                            "search_ms": round(self.search_ms, 3)}}


class MemoryService:
    def __init__(self, embeddings: EmbeddingService, settings: Mapping[str, Any],
                 vector_index: VectorIndex | None = None, monitor: PerfMonitor | None = None):
        """`vector_index`: the process's similarity index for this database (None: every
        search asks sqlite-vec). `monitor` receives each search's time as search.ms."""
        self.embeddings = embeddings
        self.settings = settings
        self.vector_index = vector_index
        self.monitor = monitor

    def add(self, conn: Any, new: NewMemory, *, source: str = "api") -> tuple[Memory, Findings]:
        """Store the memory (always) and report what it duplicates or may contradict."""
        vector = self.embeddings.embed(new.content)
        findings = self._findings(conn, vector, new.content)
        memory = store.insert_memory(conn, content=new.content, type=new.type, tags=new.tags,
                                     embedding=vector, source=source, metadata=new.metadata)
        return memory, findings

    def check(self, conn: Any, content: str) -> Findings:
        """What adding `content` would report, without writing anything."""
        return self._findings(conn, self.embeddings.embed(content), content)

    def edit(self, conn: Any, memory_id: int, patch: MemoryPatch, *,
             metadata: dict | None = None, change: str = "edit") -> tuple[Memory, Findings]:
        """Apply the patch (and `metadata`, which only a restore replaces); the row as it
        was becomes a version marked `change`."""
        current = self.get(conn, memory_id)
        vector = None
        findings = Findings()
        if patch.content is not None and patch.content != current.content:
            vector = self.embeddings.embed(patch.content)
            findings = self._findings(conn, vector, patch.content, exclude_id=memory_id)
        updated = store.update_memory(
            conn, memory_id, content=patch.content if vector is not None else None,
            type=patch.type, tags=patch.tags, metadata=metadata, embedding=vector,
            change=change)
        if updated is None:  # deleted by someone else between the read and the write
            raise self._not_found(memory_id)
        return updated, findings

    def history(self, conn: Any, memory_id: int) -> tuple[Memory, list[MemoryVersion]]:
        """The memory now and its earlier versions, newest first."""
        return self.get(conn, memory_id), store.list_versions(conn, memory_id)

    def restore(self, conn: Any, memory_id: int, version: int) -> tuple[Memory, Findings]:
        """Bring back a version's content, type, tags and metadata as a new change (so the
        state it replaces becomes a version too: a restore can itself be undone)."""
        self.get(conn, memory_id)  # an unknown memory is memory_not_found, not a version
        old = store.get_version(conn, memory_id, version)
        if old is None:
            raise NotFound(f"Memory {memory_id} has no version {version}; "
                           f"GET /api/memories/{memory_id}/history lists its versions.",
                           code="version_not_found")
        patch = MemoryPatch(content=old.content, type=old.type, tags=old.tags)
        return self.edit(conn, memory_id, patch, metadata=old.metadata, change="restore")

    def delete(self, conn: Any, memory_id: int) -> Memory:
        """Move the memory to the trash: restore_deleted undoes it until it is purged."""
        deleted = store.delete_memory(conn, memory_id)
        if deleted is None:
            raise self._not_found(memory_id)
        return deleted

    def trash(self, conn: Any, page: Page) -> tuple[list[DeletedMemory], int]:
        """Deleted memories, most recently deleted first."""
        return store.list_deleted_memories(conn, limit=page.limit, offset=page.offset)

    def restore_deleted(self, conn: Any, memory_id: int) -> Memory:
        """Undo a delete: the memory comes back with its id, timestamps and history."""
        memory = store.restore_deleted_memory(conn, memory_id)
        if memory is None:
            raise self._not_in_trash(memory_id)
        self._refresh_vector(conn, memory)
        return memory

    def _refresh_vector(self, conn: Any, memory: Memory) -> None:
        """A re-embed (after a change of embedding model) skips the trash, so a restored
        memory's kept vector may be an older model's: with the model loaded, store the
        current one (a cache hit when nothing changed). While it loads, the kept one stays."""
        if self.embeddings.state != "ready":
            return
        store.replace_vectors(conn, [(memory.id, memory.content,
                                      self.embeddings.embed(memory.content))])

    def purge(self, conn: Any, memory_id: int) -> None:
        """Delete a memory from the trash for good."""
        if not store.purge_deleted_memory(conn, memory_id):
            raise self._not_in_trash(memory_id)

    def empty_trash(self, conn: Any) -> int:
        return store.purge_trash(conn)

    def get(self, conn: Any, memory_id: int) -> Memory:
        memory = store.get_memory(conn, memory_id)
        if memory is None:
            raise self._not_found(memory_id)
        return memory

    def names_known(self, conn: Any, names: set[str]) -> bool:
        """Does a memory hold one of `names` (lower-case) as a word?"""
        return bool(retrieval.holding_names(conn, names, limit=1))

    def count(self, conn: Any) -> int:
        """Memories stored (the trash not included)."""
        return store.count_memories(conn)

    def list(self, conn: Any, query: ListQuery) -> tuple[list[Memory], int]:
        return store.list_memories(conn, type=query.type, tag=query.tag, limit=query.limit,
                                   offset=query.offset)

    def search(self, conn: Any, query: SearchQuery) -> SearchResult:
        started = time.perf_counter()
        vector = self.embeddings.embed(query.text)
        embedded = time.perf_counter()
        hits = self.recall(conn, query.text, vector, k=query.k, threshold=query.threshold,
                           type=query.type)
        finished = time.perf_counter()
        return SearchResult(hits, (embedded - started) * 1000, (finished - embedded) * 1000)

    def recall(self, conn: Any, text: str, vector: np.ndarray, *, k: int, threshold: float,
               type: str | None = None, judged: bool = False) -> list[ScoredMemory]:
        """The memories a query recalls (the search box and the chat): `text` and its
        embedding `vector` ranked by meaning and words (hybrid_retrieval, timed as
        search.hybrid_ms), or by meaning only. The people it refers to are searched by
        their names too (search/aliases.py). `judged` (the chat): only memories whose
        relevance reaches chat_memory_relevance (search/relevance.py)."""
        if not self.settings["hybrid_retrieval"]:
            return self.nearest(conn, vector, k=k, threshold=threshold, type=type)
        started = time.perf_counter()
        people = aliases.people_in(conn, text)
        expanded = aliases.expanded(text, people)
        expansion = (expanded, self.embeddings.embed(expanded)) if expanded != text else None
        hits = retrieval.hybrid_search(
            conn, text, vector, k=k, threshold=threshold, type=type, index=self.vector_index,
            expansion=expansion, people=people,
            admit=self.settings["chat_memory_relevance"] if judged else None)
        self._record("search.hybrid_ms", started)
        return hits

    def nearest(self, conn: Any, vector: np.ndarray, *, k: int, threshold: float,
                type: str | None = None) -> list[ScoredMemory]:
        """The memories nearest a query vector, by meaning only, timed as search.ms."""
        started = time.perf_counter()
        hits = retrieval.search(conn, vector, k=k, threshold=threshold, type=type,
                                index=self.vector_index)
        self._record("search.ms", started)
        return hits

    def _record(self, operation: str, started: float) -> None:
        if self.monitor is not None:
            self.monitor.record(operation, (time.perf_counter() - started) * 1000)

    def _findings(self, conn: Any, vector: Any, content: str,
                  exclude_id: int | None = None) -> Findings:
        """Near memories, each classified against `content` (insights.find_related)."""
        return insights.find_related(
            conn, vector, content, thresholds=insights.pair_thresholds(self.settings),
            contradiction_threshold=self.settings["contradiction_threshold"],
            limit=self.settings["max_findings"], exclude_id=exclude_id,
            index=self.vector_index)

    @staticmethod
    def _not_found(memory_id: int) -> NotFound:
        return NotFound(f"No memory has id {memory_id}.", code="memory_not_found")

    @staticmethod
    def _not_in_trash(memory_id: int) -> NotFound:
        return NotFound(f"The trash holds no memory with id {memory_id}: it was restored, "
                        "deleted for good, or never deleted. GET /api/trash lists the trash.",
                        code="trash_item_not_found")
