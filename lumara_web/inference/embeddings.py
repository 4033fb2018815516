"""Text → float32 unit vectors (384-d from the bundled all-MiniLM-L6-v2; the width is the
model's), through three layers, fastest first:

1. an in-process LRU memo,
2. a persistent cache table keyed by (model id, sha256 of the text) that survives restarts,
3. the model itself, in batches, with concurrent requests for one text computed once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import numpy as np

from ..observability.perf import PerfMonitor
from ..storage import store
from ..storage.db import connect
from .bundled import EMBEDDING_MODEL_ID, embedding_model_path
from .loading import BackgroundLoad

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """A model that turns texts into L2-normalized float32 vectors, one row per text."""

    model_id: str
    dimensions: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def import_sentence_transformers() -> Any:
    """Import sentence-transformers with every hub lookup switched off first.

    These flags are read at import time, so they must be set before the first import.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import sentence_transformers

    return sentence_transformers


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or another sentence-transformers folder) on the CPU."""

    def __init__(self, model: Any, model_id: str, batch_size: int = 64):
        self.model = model
        self.model_id = model_id
        self.dimensions = model.get_embedding_dimension()
        self.batch_size = batch_size

    @classmethod
    def load(cls, configured_path: str | Path | None = None,
             batch_size: int = 64) -> "SentenceTransformerEmbedder":
        path = embedding_model_path(configured_path)
        sentence_transformers = import_sentence_transformers()
        model = sentence_transformers.SentenceTransformer(str(path), device="cpu")
        model_id = EMBEDDING_MODEL_ID if not configured_path else str(path.resolve())
        return cls(model, model_id, batch_size)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=self.batch_size,
                                    normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class LruMemo:
    """Bounded text → vector map that forgets the least recently used. Not thread-safe:
    the EmbeddingService guards it with its lock."""

    def __init__(self, max_size: int):
        self.max_size = max_size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, text: str) -> np.ndarray | None:
        vector = self._items.get(text)
        if vector is not None:
            self._items.move_to_end(text)
        return vector

    def put(self, text: str, vector: np.ndarray) -> None:
        self._items[text] = vector
        self._items.move_to_end(text)
        while len(self._items) > self.max_size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class PersistentEmbeddingCache:
    """The embedding_cache table, on a connection of its own shared by every thread."""

    # Milliseconds a cache write waits for SQLite's write lock before it is skipped (the
    # vector is still returned and memoized). An import holds the lock for its whole
    # writing phase, seconds at 100,000 memories; a search must not wait that long to save
    # an optimisation, nor hold this cache's lock (every cache read waits on it) meanwhile.
    WRITE_WAIT_MS = 100

    def __init__(self, db_path: str | Path):
        self._conn = connect(db_path, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {self.WRITE_WAIT_MS}")
        self._lock = threading.Lock()

    def get_many(self, model_id: str, digests: list[bytes]) -> dict[bytes, np.ndarray]:
        with self._lock:
            return store.get_cached_embeddings(self._conn, model_id, digests)

    def put_many(self, model_id: str, items: list[tuple[bytes, np.ndarray]]) -> None:
        with self._lock:
            store.put_cached_embeddings(self._conn, model_id, items)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class EmbeddingService:
    """The one way the app embeds text. The model loads in the background; callers that
    need it before it is ready wait up to `wait_seconds`, then get ModelUnavailable."""

    def __init__(self, *, cache: PersistentEmbeddingCache | None = None,
                 memo_size: int = 4096, batch_size: int = 64, wait_seconds: float = 60.0,
                 embedder: Embedder | None = None,
                 loader: Callable[[], Embedder] | None = None,
                 runner: Callable[[Callable[[], np.ndarray]], np.ndarray] | None = None,
                 monitor: PerfMonitor | None = None):
        """runner: runs a model call on the app's inference thread (Engine.run_task), so
        torch shares one OpenMP thread pool with llama.cpp; without one, calls run here.
        monitor: receives each call's time as embedding.cached_ms (no model needed),
        embedding.computed_ms (one text through the model) or embedding.batch_ms."""
        self.cache = cache
        self.monitor = monitor
        self.runner = runner
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.model = BackgroundLoad[Embedder]("embedding model", loader=loader,
                                              loaded=embedder)
        self._memo = LruMemo(memo_size)
        self._lock = threading.Lock()  # guards the memo, the in-flight map and the counters
        self._model_lock = threading.Lock()
        self._in_flight: dict[str, Future] = {}
        self.counters = {"memo_hits": 0, "cache_hits": 0, "computed": 0, "model_batches": 0}

    def start_loading(self) -> threading.Thread | None:
        """Load the model on a background thread, once; the app answers meanwhile."""
        return self.model.start()

    @property
    def state(self) -> str:
        return self.model.state

    @property
    def model_id(self) -> str | None:
        return self.model.value.model_id if self.model.value else None

    @property
    def dimensions(self) -> int | None:
        """The width of the model's vectors (None until it has loaded)."""
        return self.model.value.dimensions if self.model.value else None

    def status(self) -> dict:
        with self._lock:
            counters = dict(self.counters, memo_size=len(self._memo))
        return {**self.model.status(), "model": self.model_id,
                "dimensions": self.dimensions, "counters": counters}

    # -- embedding ------------------------------------------------------------------------
    def embed(self, text: str) -> np.ndarray:
        """One text's vector (read-only, shared with the memo)."""
        started = time.perf_counter()
        with self._lock:
            vector = self._memo.get(text)
            if vector is not None:
                self.counters["memo_hits"] += 1
        if vector is None:
            vectors, computed = self._vectors_for([text])
            vector = vectors[text]
        else:
            computed = 0
        self._record("embedding.computed_ms" if computed else "embedding.cached_ms", started)
        return vector

    def embed_many(self, texts: Iterable[str]) -> np.ndarray:
        """Vectors for `texts`, one row each, in order; only texts found in no cache reach
        the model."""
        started = time.perf_counter()
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dimensions or 0), dtype=np.float32)
        vectors, computed = self._vectors_for(texts)
        if computed:
            self._record("embedding.batch_ms", started)
        return np.stack([vectors[text] for text in texts])

    def _record(self, operation: str, started: float) -> None:
        if self.monitor is not None:
            self.monitor.record(operation, (time.perf_counter() - started) * 1000)

    def _vectors_for(self, texts: list[str]) -> tuple[dict[str, np.ndarray], int]:
        """Each distinct text's vector, and how many of them this call had the model compute."""
        embedder = self.model.wait(self.wait_seconds)
        vectors: dict[str, np.ndarray] = {}
        owned: dict[str, Future] = {}  # texts this call computes
        awaited: dict[str, Future] = {}  # texts another call is already computing
        with self._lock:
            for text in dict.fromkeys(texts):
                vector = self._memo.get(text)
                if vector is not None:
                    self.counters["memo_hits"] += 1
                    vectors[text] = vector
                elif text in self._in_flight:
                    awaited[text] = self._in_flight[text]
                else:
                    owned[text] = self._in_flight[text] = Future()
        computed = 0
        if owned:
            try:
                computed = self._resolve(embedder, owned)
            except BaseException as exc:
                for future in owned.values():
                    if not future.done():
                        future.set_exception(exc)
                raise
            finally:
                with self._lock:
                    for text in owned:
                        self._in_flight.pop(text, None)
        for text, future in (*owned.items(), *awaited.items()):
            vectors[text] = future.result()
        return vectors, computed

    def _resolve(self, embedder: Embedder, owned: dict[str, Future]) -> int:
        """Fill each owned future from the persistent cache, else from the model; returns
        how many the model computed."""
        digests = {text: text_digest(text) for text in owned}
        cached = self._cache_get(embedder.model_id, list(digests.values()))
        misses = []
        for text, digest in digests.items():
            if digest in cached:
                self._publish(text, cached[digest], owned[text], counter="cache_hits")
            else:
                misses.append(text)
        # Similar lengths batch together with less padding; each batch is cached as it
        # finishes and frees the model between batches, so a single query can slip in.
        misses.sort(key=len)
        for start in range(0, len(misses), self.batch_size):
            batch = misses[start:start + self.batch_size]
            computed = self._run_model(lambda: embedder.embed(batch))
            with self._lock:
                self.counters["model_batches"] += 1
            self._cache_put(embedder.model_id,
                            [(digests[text], vector) for text, vector in zip(batch, computed)])
            for text, vector in zip(batch, computed):
                self._publish(text, vector, owned[text], counter="computed")
        return len(misses)

    def _run_model(self, call: Callable[[], np.ndarray]) -> np.ndarray:
        if self.runner is not None:
            return self.runner(call)
        with self._model_lock:  # one model call at a time: 2 cores, no gain from two
            return call()

    def _publish(self, text: str, vector: np.ndarray, future: Future, *, counter: str) -> None:
        vector = np.array(vector, dtype=np.float32)  # own copy, so the memo can't be aliased
        vector.flags.writeable = False
        with self._lock:
            self._memo.put(text, vector)
            self.counters[counter] += 1
        future.set_result(vector)

    # The persistent cache only speeds things up: if the disk fails, embed anyway.
    def _cache_get(self, model_id: str, digests: list[bytes]) -> dict[bytes, np.ndarray]:
        if self.cache is None:
            return {}
        try:
            return self.cache.get_many(model_id, digests)
        except Exception:
            log.warning("embedding cache read failed; computing instead", exc_info=True)
            return {}

    def _cache_put(self, model_id: str, items: list[tuple[bytes, np.ndarray]]) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put_many(model_id, items)
        except Exception:
            log.warning("embedding cache write failed; continuing without it", exc_info=True)

    def clear_memo(self) -> None:
        with self._lock:
            self._memo.clear()
