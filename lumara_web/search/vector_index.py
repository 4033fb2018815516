"""An in-process similarity index over `memory_vectors`, kept consistent with SQLite.

SQLite stays the source of truth. Triggers on `memories` (migration m003) append every
insert, update and delete to the `memory_changes` log under an AUTOINCREMENT sequence.
Before each search the index reads the log entries newer than the last one it applied (an
indexed range query, a few microseconds when nothing changed) and replaces those memories'
vectors with their committed state. Only committed data is read, on the index's own
connection: rolled-back transactions, other connections and other processes are covered
by construction. When the log has been pruned past the index's position (it keeps the last
CHANGE_LOG_KEEP changes), the index reloads.

Two layouts, chosen by size:
- exact: one contiguous float32 matrix; X @ q and argpartition (≈ 4 ms at 50,000 on one
  core, and perfect recall);
- IVF: faiss IndexIVFPQ on inner product (vectors normalized, so it is the cosine): 48-byte
  product-quantized codes in memory find 200 candidates, which are rescored exactly from
  a file of full vectors read with pread (vector_file.py) — 1,000,000 memories take ≈ 60 MB
  of memory instead of 1.5 GB. faiss is imported only at that size, so small installs never
  pay its memory.
A change of layout, or an IVF grown well past the size it was trained for, is built in a
background thread from a SQLite snapshot while the current layout keeps serving; the new
one then catches up from the log and replaces it under the lock. The trained IVF
centroids are saved in the data folder, so a restart re-adds the vectors but does not
retrain.

Thread safety: one lock covers applying changes and searching, so a search never sees a
half-applied change (concurrent searches take turns: each holds it for the scan only).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..storage import db, store
from ..storage.private import private_folder, write_private_text
from . import index_file, vector_file
from .vector_file import VectorFile

log = logging.getLogger(__name__)

# Up to this many memories an exact scan is fast enough (≈ 4 ms at 50,000 on one core of
# this kind of machine, ≈ 8 ms at 100,000 — no headroom under the 10 ms aim there) and
# needs no training; above it the IVF layout. An IVF collection goes back to exact below
# half of it (the gap stops a collection near the limit from rebuilding back and forth).
EXACT_LIMIT = 50_000
# IVF lists: about n/100 vectors per list, as a power of two, at most 1,024 (512 at the
# exact limit, 1,024 from 100,000 on). More lists would make k-means training at 1M
# memories cost minutes on two cores.
IVF_MAX_LISTS = 1024
# Lists scanned per query: 1/16 of them (64 of 1,024 ≈ 6 % of the vectors). Measured on
# clustered embedding-like data (lumara_bench/search.py) at 1M: recall@10 0.997 (0.994 for queries
# far from every stored memory); 1/32 gave 0.986 (0.972) — kept as headroom for data
# less kind than the benchmark's.
IVF_PROBE_DIVISOR = 16
# k-means sample per list: faiss warns below 39, its default cap is 256; 64 trains 1,024
# lists in seconds and gives the same recall here.
IVF_TRAIN_PER_LIST = 64
# k-means iterations: 10 instead of faiss's 25 trains 2.5× faster with the same recall
# (lumara_bench/search.py: 0.997 at 1M either way).
IVF_TRAIN_ITERATIONS = 10
# Product quantization: one code byte per 8 numbers (48 bytes for MiniLM's 384). Measured
# at 1M on the benchmark's embedding-like data, nprobe 64, rescoring exactly (see
# docs/PERFORMANCE.md): 48 bytes and 200 candidates give recall@10 0.971 at 1.7 ms p50 in
# 58 MB; 50 candidates only 0.874; 96 bytes reach 0.99 in twice the memory.
PQ_DIMS_PER_BYTE = 8
# Candidates the codes propose for exact rescoring: at least this many, and this many per
# result asked for.
RESCORE_CANDIDATES = 200
RESCORE_PER_RESULT = 10
# Vectors encoded per add while building (read from the vector file, ≈ 25 MB at 384).
ADD_BATCH = 16384
# Retrain when the collection has grown this many times past the size it was trained at.
IVF_RETRAIN_GROWTH = 4
# Saved centroids are reused unless vectors fit them this much worse (mean cosine to their
# nearest centroid) than when they were trained — e.g. after a change of embedding model.
CENTROID_FIT_TOLERANCE = 0.05
# Rows per matrix-vector product in the exact scan. numpy's OpenBLAS splits a product of
# 2,000 or more rows over two threads, and on two cores busy with other work (llama.cpp
# decoding) the second thread waits a scheduler tick: 8 ms measured at 2,000–100,000 rows,
# against 0.7 ms for 10,000 rows in blocks of 1,024, which stay on the calling thread.
SCAN_BLOCK_ROWS = 1024
# Vectors read from SQLite per batch while loading (≈ 6 MB).
LOAD_BATCH = 4096
# More pending changes than this share of the collection: reload instead of applying them
# one by one (a vec0 point lookup costs ≈ 0.2 ms).
RELOAD_SHARE = 0.25
# Changes applied to an exact layout before it is saved again (well within the change
# log's CHANGE_LOG_KEEP, so a later start can always catch up from the last save).
RESAVE_CHANGES = 2_000
# Memories whose vectors are compared with SQLite before a saved index is trusted.
SAVED_SAMPLE = 16
# After a failed load, searches use sqlite-vec for this long before the next attempt (the
# failure is logged once per attempt, not once per search).
BUILD_RETRY_SECONDS = 60.0


def _normalized(vectors: np.ndarray, width: int) -> np.ndarray:
    """Unit rows of `width` (so the inner product is the cosine); zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, width)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest finite scores, best first."""
    if k < len(scores):
        positions = np.argpartition(-scores, k - 1)[:k]
    else:
        positions = np.arange(len(scores))
    positions = positions[np.argsort(-scores[positions], kind="stable")]
    return positions[np.isfinite(scores[positions])]


class ExactVectors:
    """Rows of a contiguous matrix with their memory ids and type codes; deletes move the
    last row into the hole, so the matrix never has gaps to skip."""

    kind = "exact"

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, codes: np.ndarray):
        capacity = max(1024, len(ids) + len(ids) // 4)
        self.width = vectors.shape[1]
        self._matrix = np.zeros((capacity, self.width), dtype=np.float32)
        self._ids = np.zeros(capacity, dtype=np.int64)
        self._codes = np.zeros(capacity, dtype=np.uint8)
        self._size = len(ids)
        self._matrix[:self._size] = vectors
        self._ids[:self._size] = ids
        self._codes[:self._size] = codes
        self._row = {int(memory_id): row for row, memory_id in enumerate(ids.tolist())}

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        # The dict: ≈ 100 bytes per entry (key, value and table slot).
        return (self._matrix.nbytes + self._ids.nbytes + self._codes.nbytes
                + 100 * len(self._row))

    def count(self, code: int) -> int:
        return int(np.count_nonzero(self._codes[:self._size] == code))

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, codes: np.ndarray) -> None:
        for memory_id, vector, code in zip(ids.tolist(), vectors, codes.tolist()):
            row = self._row.get(memory_id)
            if row is None:
                if self._size == len(self._ids):
                    self._grow()
                row = self._size
                self._size += 1
                self._row[memory_id] = row
                self._ids[row] = memory_id
            self._matrix[row] = vector
            self._codes[row] = code

    def remove(self, ids: list[int]) -> None:
        for memory_id in ids:
            row = self._row.pop(memory_id, None)
            if row is None:
                continue
            last = self._size - 1
            if row != last:
                moved = int(self._ids[last])
                self._matrix[row] = self._matrix[last]
                self._ids[row] = moved
                self._codes[row] = self._codes[last]
                self._row[moved] = row
            self._size = last

    def _grow(self) -> None:
        capacity = 2 * len(self._ids)
        matrix = np.zeros((capacity, self.width), dtype=np.float32)
        matrix[:self._size] = self._matrix[:self._size]
        self._matrix = matrix
        self._ids = np.resize(self._ids, capacity)
        self._codes = np.resize(self._codes, capacity)

    def search(self, query: np.ndarray, k: int, code: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.empty(self._size, dtype=np.float32)
        for start in range(0, self._size, SCAN_BLOCK_ROWS):
            block = slice(start, min(start + SCAN_BLOCK_ROWS, self._size))
            np.matmul(self._matrix[block], query, out=scores[block])
        if code:
            scores[self._codes[:self._size] != code] = -np.inf
        positions = _top_k(scores, k)
        return self._ids[positions], scores[positions]

    def arrays(self) -> dict[str, np.ndarray]:
        """What index_file saves (views, no copies: save before anything changes them)."""
        return {"ids": self._ids[:self._size], "codes": self._codes[:self._size],
                "vectors": self._matrix[:self._size]}

    def similarities(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        rows = {memory_id: self._row[memory_id] for memory_id in ids if memory_id in self._row}
        if not rows:
            return {}
        scores = self._matrix[list(rows.values())] @ query
        return dict(zip(rows, scores.tolist()))


def _faiss() -> Any:
    import faiss

    # One thread: the server decodes with llama.cpp on the other threads, and two OpenMP
    # pools on two cores slow each other down (see engine.py). One query at a time is
    # also where IVF is fastest — its threads split queries, not one query's lists.
    faiss.omp_set_num_threads(1)
    return faiss


def ivf_lists(size: int) -> int:
    """About 100 vectors per list, a power of two, at most IVF_MAX_LISTS."""
    return int(min(IVF_MAX_LISTS, 2 ** max(0, round(math.log2(max(size, 1) / 100)))))


class IvfVectors:
    """faiss IndexIVFPQ keyed by memory id: compressed codes in memory find candidates,
    and each candidate is rescored exactly from the vector file (vector_file.py), so
    scores and similarities() are exact cosines. Types: one bitmap per type code over
    memory ids, so a filtered search skips other types inside the scan (IDSelectorBitmap)."""

    kind = "ivf"

    def __init__(self, index: Any, trained_size: int, vector_file: VectorFile):
        self.faiss = _faiss()
        self.index = index
        self.trained_size = trained_size
        self.vector_file = vector_file
        self.nprobe = min(index.nlist, max(8, index.nlist // IVF_PROBE_DIVISOR))
        self._type_of = np.zeros(1024, dtype=np.uint8)  # by memory id; 0 = absent
        self._bitmaps: dict[int, np.ndarray] = {}
        self._counts: dict[int, int] = {}

    @classmethod
    def from_saved(cls, index: Any, trained_size: int, type_of: np.ndarray,
                   vector_file: VectorFile) -> "IvfVectors":
        """An index read back by index_file, with its type of each memory id."""
        loaded = cls(index, trained_size, vector_file)
        present = np.count_nonzero(type_of)
        if present != index.ntotal:
            raise ValueError(f"{index.ntotal} vectors but {present} memories typed")
        loaded._type_of = np.zeros(8 * (len(type_of) // 8 + 1), dtype=np.uint8)
        loaded._type_of[:len(type_of)] = type_of
        for code in np.unique(type_of[type_of > 0]).tolist():
            chosen = loaded._type_of == code  # one pass per type: ≈ 1 ms at 1M
            loaded._bitmaps[code] = np.packbits(chosen, bitorder="little")
            loaded._counts[code] = int(np.count_nonzero(chosen))
        return loaded

    def arrays(self) -> dict[str, np.ndarray]:
        return {"type_of": self._type_of}

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def width(self) -> int:
        return int(self.index.d)

    @property
    def nbytes(self) -> int:
        # Codes and ids in the lists, the coarse and PQ centroids, our type arrays.
        lists = self.index.ntotal * (self.index.code_size + 8)
        centroids = (self.index.nlist + 256) * self.index.d * 4
        return int(lists + centroids + self._type_of.nbytes
                   + sum(bitmap.nbytes for bitmap in self._bitmaps.values()))

    def count(self, code: int) -> int:
        return self._counts.get(code, 0)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, codes: np.ndarray) -> None:
        if not len(ids):
            return
        self.remove(ids.tolist())
        self.vector_file.write(ids, vectors)
        self._add(ids, vectors, codes)

    def _add(self, ids: np.ndarray, vectors: np.ndarray, codes: np.ndarray) -> None:
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                np.ascontiguousarray(ids, dtype=np.int64))
        self._mark(ids, codes)

    def _mark(self, ids: np.ndarray, codes: np.ndarray) -> None:
        self._ensure_id_capacity(int(ids.max()) if len(ids) else 0)
        self._type_of[ids] = codes
        for code in np.unique(codes).tolist():
            chosen = ids[codes == code]
            bitmap = self._bitmaps.setdefault(code, np.zeros(len(self._type_of) // 8, np.uint8))
            np.bitwise_or.at(bitmap, chosen >> 3, (1 << (chosen & 7)).astype(np.uint8))
            self._counts[code] = self._counts.get(code, 0) + len(chosen)

    def remove(self, ids: list[int]) -> None:
        present = np.array([memory_id for memory_id in ids
                            if 0 <= memory_id < len(self._type_of) and self._type_of[memory_id]],
                           dtype=np.int64)
        if not len(present):
            return
        # Without a direct map faiss scans every list's ids once per call (≈ 3 ms at 1M);
        # a map would cost 32 bytes per memory.
        self.index.remove_ids(present)
        for code in np.unique(self._type_of[present]).tolist():
            chosen = present[self._type_of[present] == code]
            np.bitwise_and.at(self._bitmaps[code], chosen >> 3,
                              ~(1 << (chosen & 7)).astype(np.uint8))
            self._counts[code] -= len(chosen)
        self._type_of[present] = 0

    def _ensure_id_capacity(self, largest_id: int) -> None:
        if largest_id < len(self._type_of):
            return
        capacity = 8 * (max(2 * len(self._type_of), largest_id + 1) // 8 + 1)
        grown = np.zeros(capacity, dtype=np.uint8)
        grown[:len(self._type_of)] = self._type_of
        self._type_of = grown
        for code, bitmap in self._bitmaps.items():
            grown = np.zeros(capacity // 8, dtype=np.uint8)
            grown[:len(bitmap)] = bitmap
            self._bitmaps[code] = grown

    def search(self, query: np.ndarray, k: int, code: int) -> tuple[np.ndarray, np.ndarray]:
        total = len(self)
        wanted = min(k, self.count(code) if code else total)
        if wanted <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        params = self.faiss.SearchParametersIVF()
        nprobe = self.nprobe
        if code:
            # Other types are skipped inside the scan. A type holding 1/m of the memories
            # has fewer candidates per list: scan √m times the lists (at 1M, a 10 % type:
            # recall 0.995 with 1×, 1.0 with 4×; √m also covers much rarer types).
            bitmap = self._bitmaps[code]
            selector = self.faiss.IDSelectorBitmap(len(bitmap), self.faiss.swig_ptr(bitmap))
            params.sel = selector
            nprobe *= math.ceil(math.sqrt(total / self.count(code)))
        candidates = max(RESCORE_CANDIDATES, RESCORE_PER_RESULT * k)
        query = query.reshape(1, -1)
        while True:
            params.nprobe = min(nprobe, self.index.nlist)
            _, ids = self.index.search(query, candidates, params=params)
            ids = ids[0][ids[0] >= 0]
            # Too few found in the probed lists (a rare type, a far-off query): widen.
            if len(ids) >= wanted or params.nprobe >= self.index.nlist:
                break
            nprobe *= 4
        scores = self.vector_file.read(ids) @ query[0]
        best = _top_k(scores, k)
        return ids[best], scores[best]

    def similarities(self, query: np.ndarray, ids: list[int]) -> dict[int, float]:
        present = [memory_id for memory_id in ids
                   if 0 <= memory_id < len(self._type_of) and self._type_of[memory_id]]
        if not present:
            return {}
        scores = self.vector_file.read(np.array(present, dtype=np.int64)) @ query
        return dict(zip(present, scores.tolist()))

    def close(self) -> None:
        self.vector_file.close()


def _centroid_fit(quantizer: Any, sample: np.ndarray) -> float:
    scores, _ = quantizer.search(sample, 1)
    return float(scores.mean())


def pq_shape(width: int, sample_size: int) -> tuple[int, int]:
    """(sub-quantizers, bits per code): one byte per PQ_DIMS_PER_BYTE numbers, 8 bits
    (256 centroids each) when the training sample has the 39 points per centroid k-means
    needs, fewer for a smaller sample (collections that small only exist in tests)."""
    target = max(1, width // PQ_DIMS_PER_BYTE)
    subquantizers = min((m for m in range(1, width + 1) if width % m == 0),
                        key=lambda m: (abs(m - target), m))
    return subquantizers, int(min(8, max(1, math.floor(math.log2(max(sample_size, 1) / 39)))))


def build_ivf(ids: np.ndarray, codes: np.ndarray, vector_file: VectorFile,
              cache_dir: Path | None = None) -> IvfVectors:
    """Train (or reuse saved centroids) on a sample read from `vector_file`, which holds
    every vector already, then add the codes in chunks: the whole collection is never in
    memory at once."""
    faiss = _faiss()
    size, width = len(ids), vector_file.width
    nlist = ivf_lists(size)
    rng = np.random.default_rng(size)  # seeded: the same data trains the same lists
    chosen = np.sort(rng.choice(size, min(size, IVF_TRAIN_PER_LIST * nlist), replace=False))
    sample = vector_file.read(ids[chosen])
    subquantizers, bits = pq_shape(width, len(sample))
    index, trained_size = _saved_centroids(cache_dir, nlist, subquantizers, bits, size, sample)
    if index is None:
        quantizer = faiss.IndexFlatIP(width)
        index = faiss.IndexIVFPQ(quantizer, width, nlist, subquantizers, bits,
                                 faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 1234
        index.cp.niter = IVF_TRAIN_ITERATIONS
        index.pq.cp.seed = 1234
        index.pq.cp.niter = IVF_TRAIN_ITERATIONS
        index.train(sample)
        trained_size = size
        _save_centroids(cache_dir, index, size, _centroid_fit(index.quantizer, sample[:2048]))
    del sample
    built = IvfVectors(index, trained_size, vector_file)
    for start in range(0, size, ADD_BATCH):
        chunk = slice(start, start + ADD_BATCH)
        built._add(ids[chunk], vector_file.read(ids[chunk]), codes[chunk])
    return built


def _centroid_paths(cache_dir: Path, nlist: int, subquantizers: int, bits: int,
                    width: int) -> tuple[Path, Path]:
    stem = cache_dir / f"ivfpq{nlist}x{subquantizers}x{bits}-d{width}"
    return stem.with_suffix(".faiss"), stem.with_suffix(".json")


def _saved_centroids(cache_dir: Path | None, nlist: int, subquantizers: int, bits: int,
                     size: int, sample: np.ndarray) -> tuple[Any, int]:
    if cache_dir is None:
        return None, 0
    index_path, meta_path = _centroid_paths(cache_dir, nlist, subquantizers, bits,
                                            sample.shape[1])
    try:
        meta = json.loads(meta_path.read_text())
        index = _faiss().read_index(str(index_path))
    except (OSError, ValueError, RuntimeError):
        return None, 0
    if (index.ntotal or index.nlist != nlist or index.d != sample.shape[1]
            or size > IVF_RETRAIN_GROWTH * meta["trained_size"]
            or _centroid_fit(index.quantizer, sample[:2048])
            < meta["fit"] - CENTROID_FIT_TOLERANCE):
        return None, 0
    return index, int(meta["trained_size"])


def _save_centroids(cache_dir: Path | None, index: Any, size: int, fit: float) -> None:
    if cache_dir is None:
        return
    index_path, meta_path = _centroid_paths(cache_dir, index.nlist, index.pq.M,
                                            index.pq.nbits, index.d)
    try:
        private_folder(cache_dir)
        partial = index_path.with_suffix(".partial")
        write_private_text(partial, "")  # centroids are averages of the memories' vectors
        _faiss().write_index(index, str(partial))  # trained, still empty: centroids only
        partial.replace(index_path)
        write_private_text(meta_path, json.dumps({"trained_size": size, "fit": fit}))
    except OSError as error:  # a cache: a failure costs a retrain at the next start
        log.warning("could not save the IVF centroids in %s: %s", cache_dir, error)


def _retire(vectors: ExactVectors | IvfVectors | None) -> None:
    """Release a layout that is no longer served (its vector file's descriptor and lock)."""
    if isinstance(vectors, IvfVectors):
        vectors.close()


@dataclass
class Snapshot:
    """Every vector as of one log position, read in one SQLite read transaction: in memory
    for the exact layout, streamed into a vector file for the IVF one."""

    seq: int
    ids: np.ndarray
    codes: np.ndarray  # type codes
    vectors: np.ndarray | None = None  # normalized rows, by position in ids
    file: VectorFile | None = None  # or every row, by memory id


class VectorIndex:
    """Top-k cosine search over the memories' vectors for one database, in this process."""

    def __init__(self, db_path: str | Path, *, cache_dir: str | Path | None = None,
                 exact_limit: int = EXACT_LIMIT, exact_return: int | None = None,
                 connect: Callable[[], Any] | None = None):
        self.db_path = Path(db_path)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.exact_limit = exact_limit
        self.exact_return = exact_limit // 2 if exact_return is None else exact_return
        self._connect = connect or (lambda: db.connect(self.db_path, check_same_thread=False))
        self._lock = threading.Lock()
        self._conn: Any = None
        self._vectors: ExactVectors | IvfVectors | None = None
        self._seq = 0
        self._type_codes: dict[str, int] = {}
        self._builder: threading.Thread | None = None
        self._saver: threading.Thread | None = None
        self._saved_seq = 0  # the change-log position of the last save (or load)
        self._build_error: BaseException | None = None
        self._failed_at = 0.0
        self.timings: dict[str, float] = {}

    # -- public -------------------------------------------------------------------------
    def start_loading(self) -> None:
        """Load in a background thread; searches fall back to sqlite-vec until it is done."""
        with self._lock:
            if self._vectors is None:
                self._start_builder()

    def wait_ready(self, timeout: float | None = None) -> bool:
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
        return self._vectors is not None

    def refresh(self) -> None:
        """Load if needed (in this thread) and apply every committed change."""
        with self._lock:
            self._refresh_locked(wait=True)

    def search(self, query: np.ndarray, *, k: int,
               type: str | None = None) -> list[tuple[int, float]] | None:
        """(memory id, cosine similarity) of the k nearest vectors, best first; None while
        a background load is still running (the caller then asks sqlite-vec)."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        with self._lock:
            if not self._refresh_locked(wait=False):
                return None
            vectors = self._vectors
            code = self._type_codes.get(type, -1) if type else 0
            if k <= 0 or code < 0 or not len(vectors) or len(query) != vectors.width:
                return []  # (a query of another width: the model changed, re-embedding)
            query = _normalized(query, vectors.width)[0]
            ids, scores = vectors.search(query, k, code)
        return list(zip(ids.tolist(), scores.tolist()))

    def similarities(self, query: np.ndarray, ids: list[int]) -> dict[int, float] | None:
        """Cosine similarity of `query` to each of the memories `ids` that exist (hybrid
        retrieval scores keyword hits the vector top-k left out); None while loading."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        with self._lock:
            if not self._refresh_locked(wait=False):
                return None
            vectors = self._vectors
            if len(query) != vectors.width:
                return {}
            return vectors.similarities(_normalized(query, vectors.width)[0], ids)

    def readiness(self) -> dict:
        """What /health shows: the layout ("loading" until the first load is installed),
        how many memories it holds, and where it came from (saved file or SQLite)."""
        vectors = self._vectors  # one read, no lock: never waits behind a search
        return {"state": "loading" if vectors is None else "ready",
                "layout": vectors.kind if vectors is not None else None,
                "size": len(vectors) if vectors is not None else 0,
                "source": self.timings.get("source")}

    def stats(self) -> dict:
        with self._lock:
            vectors = self._vectors
            stats = {"layout": vectors.kind if vectors is not None else "loading",
                     "size": len(vectors) if vectors is not None else 0,
                     "bytes": vectors.nbytes if vectors is not None else 0,
                     "seq": self._seq, **self.timings}
            if isinstance(vectors, IvfVectors):
                stats.update(nlist=vectors.index.nlist, nprobe=vectors.nprobe,
                             trained_size=vectors.trained_size)
            return stats

    def close(self) -> None:
        self.wait_ready()
        saver = self._saver
        if saver is not None:
            saver.join()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            _retire(self._vectors)
            self._vectors = None

    # -- keeping up with SQLite -----------------------------------------------------------
    def _refresh_locked(self, *, wait: bool) -> bool:
        """Apply pending changes; False when there is nothing to search yet."""
        if self._vectors is None:
            retry_later = (self._build_error is not None
                           and time.monotonic() - self._failed_at < BUILD_RETRY_SECONDS)
            if self._builder is None and (wait or not retry_later):
                self._start_builder()
            if not wait:
                return False
            self._lock.release()
            try:
                self.wait_ready()
            finally:
                self._lock.acquire()
            if self._vectors is None:
                error, self._build_error = self._build_error, None
                raise RuntimeError("the vector index could not be loaded") from error
        if self._conn is None:
            self._conn = self._connect()
        if not self._catch_up(self._vectors, self._conn):
            # The log was pruned past our position: rebuild, and let searches use
            # sqlite-vec meanwhile (a stale index would return wrong memories).
            _retire(self._vectors)
            self._vectors = None
            return self._refresh_locked(wait=wait)
        self._maybe_rebuild()
        self._maybe_save()
        return True

    def _maybe_save(self) -> None:
        """Save again once RESAVE_CHANGES have been applied since the last save: a copy
        taken under the lock (≈ 20 ms for 50,000 exact vectors or 1,000,000 IVF codes),
        written by a thread."""
        vectors = self._vectors
        if (self.cache_dir is None or vectors is None
                or (isinstance(vectors, IvfVectors) and vectors.vector_file.path is None)
                or self._seq - self._saved_seq < RESAVE_CHANGES
                or (self._saver is not None and self._saver.is_alive())):
            return
        saved = self._saved_state(vectors, self._seq)
        self._saved_seq = self._seq

        def write() -> None:
            conn = self._connect()
            try:
                database = index_file.database_id(conn)
                if database is not None:
                    self._write_saved(saved, database)
            finally:
                conn.close()

        self._saver = threading.Thread(target=write, name="vector-index-save", daemon=True)
        self._saver.start()

    def _catch_up(self, vectors: ExactVectors | IvfVectors, conn: Any) -> bool:
        """Bring `vectors` from self._seq to the committed state; False when it cannot
        (log pruned past self._seq, or so many changes that a reload is cheaper)."""
        changes, pruned = store.memory_changes_since(conn, self._seq)
        if pruned:
            return False
        if not changes:
            return True
        changed = sorted({memory_id for _, memory_id in changes})
        if len(changed) > max(1000, RELOAD_SHARE * len(vectors)):
            return False
        ids, blobs, types = store.memory_vector_states(conn, changed)
        present = np.array(ids, dtype=np.int64)
        vectors.remove(sorted(set(changed) - set(ids)))
        if ids:
            matrix = _normalized(np.frombuffer(b"".join(blobs), dtype="<f4"), vectors.width)
            vectors.upsert(present, matrix, self._codes(types))
        self._seq = max(seq for seq, _ in changes)
        return True

    def _codes(self, types: list[str]) -> np.ndarray:
        """Small integer codes for type names (0 means "any type" in a search)."""
        for name in set(types) - self._type_codes.keys():
            if len(self._type_codes) == 255:
                raise ValueError(f"More than 255 memory types: cannot index {name!r}.")
            self._type_codes[name] = len(self._type_codes) + 1
        codes = self._type_codes
        return np.fromiter((codes[name] for name in types), dtype=np.uint8, count=len(types))

    def _maybe_rebuild(self) -> None:
        vectors = self._vectors
        size = len(vectors)
        wrong_layout = (isinstance(vectors, ExactVectors) and size > self.exact_limit) or (
            isinstance(vectors, IvfVectors) and size < self.exact_return)
        outgrown = (isinstance(vectors, IvfVectors)
                    and size > IVF_RETRAIN_GROWTH * vectors.trained_size)
        if (wrong_layout or outgrown) and self._builder is None:
            self._start_builder()

    # -- loading --------------------------------------------------------------------------
    def _start_builder(self) -> None:
        self._builder = threading.Thread(target=self._build, name="vector-index-build",
                                         daemon=True)
        self._builder.start()

    def _build(self) -> None:
        """Load the saved index (first load only) or a snapshot, build the layout its size
        calls for, catch up under the lock and install it. Runs in the builder thread;
        retries if the log moves too far."""
        try:
            conn = self._connect()
            try:
                saved = self._saved(conn) if self._vectors is None else None
                while True:
                    started = time.perf_counter()
                    if saved is not None:
                        (vectors, seq), saved, source = saved, None, "saved"
                        loaded = built = time.perf_counter()
                    else:
                        snapshot = self._load_snapshot(conn)
                        loaded = time.perf_counter()
                        if self.cache_dir is None and len(snapshot.ids) > self.exact_limit:
                            log.info("building the IVF index without a data folder: the "
                                     "centroids will be trained again at the next start")
                        vectors, seq, source = self._layout_for(snapshot), snapshot.seq, "sqlite"
                        built = time.perf_counter()
                        del snapshot
                        self._save(conn, vectors, seq)
                    with self._lock:
                        previous_seq, self._seq = self._seq, seq
                        if self._catch_up(vectors, conn) and (
                                source != "saved" or self._matches_database(vectors, conn)):
                            _retire(self._vectors)
                            self._vectors = vectors
                            if isinstance(vectors, IvfVectors) and self.cache_dir is not None:
                                vector_file.remove_unused(self._vector_folder(),
                                                          keep={vectors.vector_file.path.name})
                            self._saved_seq = seq
                            self._builder, self._build_error = None, None
                            self.timings = {"load_s": round(loaded - started, 3),
                                            "build_s": round(built - loaded, 3),
                                            "source": source}
                            return
                        self._seq = previous_seq
                    _retire(vectors)
            finally:
                conn.close()
        except BaseException as error:
            log.exception("the vector index could not be built")
            with self._lock:
                self._build_error, self._failed_at = error, time.monotonic()
                self._builder = None

    # -- saved beside the database (index_file.py) ----------------------------------------
    def _saved(self, conn: Any) -> tuple[ExactVectors | IvfVectors, int] | None:
        """The index saved by an earlier run, if it fits this database (None: build)."""
        database = index_file.database_id(conn) if self.cache_dir is not None else None
        if database is None:
            return None
        saved = index_file.load(self.cache_dir, database=database,
                                width=store.vector_width(conn),
                                current_seq=store.memory_change_seq(conn))
        if saved is None:
            return None
        with self._lock:
            known = self._type_codes
            if any(known.get(name, code) != code for name, code in saved.type_codes.items()) \
                    or len(set(saved.type_codes.values())) != len(saved.type_codes):
                return None  # codes given since differ: rebuild
            self._type_codes = {**saved.type_codes, **known}
        try:
            if saved.layout == "ivf":
                if not saved.vector_file:
                    raise ValueError("it names no vector file")
                file = VectorFile.open(self._vector_folder() / saved.vector_file, saved.width)
                try:
                    vectors = IvfVectors.from_saved(saved.faiss_index, saved.trained_size,
                                                    saved.arrays["type_of"], file)
                except BaseException:
                    file.close()
                    raise
            else:
                arrays = saved.arrays
                vectors = ExactVectors(arrays["ids"], arrays["vectors"], arrays["codes"])
        except (KeyError, ValueError, RuntimeError, OSError, vector_file.FileBusy) as error:
            log.warning("not using the saved vector index: %s", error)
            return None
        return vectors, saved.seq

    def _matches_database(self, vectors: ExactVectors | IvfVectors, conn: Any) -> bool:
        """After catching up, a sample of the loaded vectors equals what SQLite holds (a
        file that passed its checks but came from another history is not trusted)."""
        ids, blobs, _ = store.memory_vector_states(conn, store.sample_memory_ids(
            conn, SAVED_SAMPLE))
        if not ids:
            return len(vectors) == 0
        stored = _normalized(np.frombuffer(b"".join(blobs), dtype="<f4"), vectors.width)
        for memory_id, vector in zip(ids, stored):
            if vectors.similarities(vector, [memory_id]).get(memory_id, -1.0) < 0.999:
                log.warning("not using the saved vector index: memory %d differs from the "
                            "database; rebuilding it", memory_id)
                return False
        return True

    def _save(self, conn: Any, vectors: ExactVectors | IvfVectors, seq: int) -> None:
        database = index_file.database_id(conn) if self.cache_dir is not None else None
        if database is None:
            return
        with self._lock:
            saved = self._saved_state(vectors, seq)
        self._write_saved(saved, database)

    def _saved_state(self, vectors: ExactVectors | IvfVectors, seq: int) -> index_file.Saved:
        """What to save for `vectors` as of `seq`; call with the lock held (it copies what
        later changes would alter)."""
        saved = index_file.Saved(vectors.kind, seq, vectors.width, dict(self._type_codes),
                                 {name: array.copy() for name, array in vectors.arrays().items()})
        if isinstance(vectors, IvfVectors):
            # Rows written after `seq` are rewritten by the catch-up at the next load; rows
            # before it must be on disk before the description that relies on them.
            vectors.vector_file.sync()
            saved.faiss_index = _faiss().serialize_index(vectors.index)
            saved.trained_size = vectors.trained_size
            saved.vector_file = vectors.vector_file.path.name
        return saved

    def _write_saved(self, saved: index_file.Saved, database: str) -> None:
        index_file.save(self.cache_dir, saved, database)
        if saved.vector_file is not None:
            vector_file.remove_unused(self._vector_folder(), keep={saved.vector_file})

    def _load_snapshot(self, conn: Any) -> Snapshot:
        file = None
        try:
            with store.read_snapshot(conn):
                seq = store.memory_change_seq(conn)
                width = store.vector_width(conn)
                typed_ids, types = store.memory_types(conn)
                if len(typed_ids) > self.exact_limit:
                    file = VectorFile.create(self._vector_folder(), width)
                id_parts, vector_parts = [], []
                for ids, blobs in store.iter_memory_vectors(conn, LOAD_BATCH):
                    id_parts.append(np.array(ids, dtype=np.int64))
                    vectors = _normalized(np.frombuffer(b"".join(blobs), dtype="<f4"), width)
                    if file is not None:
                        file.write(id_parts[-1], vectors)
                    else:
                        vector_parts.append(vectors)
        except BaseException:
            if file is not None:
                file.close()
            raise
        ids = np.concatenate(id_parts) if id_parts else np.empty(0, np.int64)
        vectors = None
        if file is None:
            vectors = (np.concatenate(vector_parts) if vector_parts
                       else np.empty((0, width), np.float32))
        del vector_parts
        # Each vector takes its memory's type (memory_types is ordered by id); a vector
        # without its memory row is skipped (store.integrity_problems reports it).
        typed_ids = np.array(typed_ids, dtype=np.int64)
        where = np.minimum(np.searchsorted(typed_ids, ids), max(len(typed_ids) - 1, 0))
        known = typed_ids[where] == ids if len(typed_ids) else np.zeros(len(ids), bool)
        if not known.all():
            ids, where = ids[known], where[known]
            vectors = vectors[known] if vectors is not None else None
        with self._lock:
            type_codes = self._codes(types)
        return Snapshot(seq, ids, type_codes[where], vectors, file)

    def _vector_folder(self) -> Path | None:
        return self.cache_dir / index_file.FOLDER if self.cache_dir is not None else None

    def _layout_for(self, snapshot: Snapshot) -> ExactVectors | IvfVectors:
        if snapshot.file is not None:
            try:
                return build_ivf(snapshot.ids, snapshot.codes, snapshot.file, self.cache_dir)
            except BaseException:
                snapshot.file.close()
                raise
        return ExactVectors(snapshot.ids, snapshot.vectors, snapshot.codes)
