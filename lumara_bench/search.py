"""Similarity search at scale: Lumara's search path (retrieval.search with the VectorIndex)
beside a raw sqlite-vec vec0 KNN and a numpy brute-force scan, in the same process, on the
same SQLite file built through the real schema.

The data is synthetic but embedding-like (random gaussian vectors would be useless: in 384
dimensions they are all about equally far apart, so every ANN index looks bad and no
neighbour means anything). `EmbeddingLikeData` draws a seeded mixture of Gaussians in a
64-dimensional latent space with a decaying spectrum, lifts it to 384 dimensions with a
random orthonormal basis, adds a shared mean direction and a little isotropic noise, and
normalizes. Its statistics were matched to all-MiniLM-L6-v2 embeddings of the evaluation
sentences: mean pairwise cosine 0.09 (MiniLM 0.09), spread 0.13 (0.14), length of the mean
vector 0.31 (0.32), participation-ratio dimension ≈ 35 (≈ 32).

Queries are of two kinds, half each: "near" ones come from topics that hold memories
(asking about something stored), "far" ones from topics that hold none (asking about
something not stored — the hard case for an IVF index, whose probed lists may all miss).
"""

from __future__ import annotations

import gc
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from lumara_web.observability.perf import process_rss_mb
from lumara_web.search import retrieval
from lumara_web.search.vector_index import VectorIndex
from lumara_web.storage import db, migrations, store

from .evaluation import distractor_memories
from .server import measure_large_collection

DIMENSIONS = migrations.EMBEDDING_DIMENSIONS
# Type mix: skewed, so a filter on the rare type exercises the filtered IVF scan.
TYPES = ("knowledge", "experience", "method")
TYPE_SHARES = (0.6, 0.3, 0.1)
# Raw sqlite-vec queries per size: it scans every vector (≈ 0.5 ms per 1,000), so at 1M
# each costs about half a second; a few give a stable median.
RAW_QUERY_BUDGET_MS = 6_000
QUICK_SIZES = (1_000, 10_000, 100_000)
QUICK_QUERIES = 40
FULL_SIZES = (1_000, 10_000, 100_000, 1_000_000)
FULL_QUERIES = 200
# Sizes whose memories get sentences (evaluation.distractor_memories) for the keyword side
# of hybrid retrieval, timed beside vector-only search; larger ones keep placeholder texts.
HYBRID_SIZES = (1_000, 10_000)
# Searches sent through the API by the server started on a large collection.
SERVER_SEARCHES = 40


class EmbeddingLikeData:
    """Seeded clustered unit vectors (see the module docstring): broad topics, small groups
    of related memories within them (about 40 each, so the structure gets finer as the
    collection grows, as a real one's does), and points around each group."""

    def __init__(self, seed: int = 0, broad_topics: int = 300, latent: int = 64):
        self.rng = np.random.default_rng(seed)
        self.basis = np.linalg.qr(self.rng.standard_normal((DIMENSIONS, latent)))[0].astype(
            np.float32)
        scales = np.arange(1, latent + 1) ** -0.3  # a decaying spectrum, as in real models
        self.scales = (scales / np.linalg.norm(scales)).astype(np.float32)
        mean = self.rng.standard_normal(DIMENSIONS)
        self.mean = (0.35 * mean / np.linalg.norm(mean)).astype(np.float32)
        self.broad_topics = broad_topics
        # A quarter more broad topics than the stored ones: "far" queries come from those.
        self.topics = (self.rng.standard_normal((broad_topics + broad_topics // 4, latent))
                       * self.scales).astype(np.float32)
        self.groups = np.empty((0, latent), np.float32)
        self.widths = np.empty(0, np.float32)

    def _lift(self, latent: np.ndarray) -> np.ndarray:
        vectors = self.mean + latent @ self.basis.T + 0.02 * self.rng.standard_normal(
            (len(latent), DIMENSIONS), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def _around(self, centres: np.ndarray, widths: np.ndarray) -> np.ndarray:
        out = np.empty((len(centres), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(centres), 65536):  # float32 chunks: 1M stays ≈ 1.5 GB
            chunk = slice(start, start + 65536)
            noise = self.rng.standard_normal((len(centres[chunk]), len(self.scales)),
                                             dtype=np.float32)
            out[chunk] = self._lift(centres[chunk] + noise * self.scales * widths[chunk, None])
        return out

    def memories(self, count: int) -> np.ndarray:
        groups = max(50, count // 40)
        parents = self.rng.integers(0, self.broad_topics, groups)
        self.groups = (self.topics[parents] + 0.6 * self.scales * self.rng.standard_normal(
            (groups, len(self.scales)), dtype=np.float32)).astype(np.float32)
        self.widths = self.rng.uniform(0.15, 0.4, groups).astype(np.float32)
        chosen = self.rng.integers(0, groups, count)
        return self._around(self.groups[chosen], self.widths[chosen])

    def queries(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(queries, is_near) after memories(): the first half from the stored groups, the
        rest from broad topics that hold no memory."""
        near = count - count // 2
        chosen = self.rng.integers(0, len(self.groups), near)
        far = self.rng.integers(self.broad_topics, len(self.topics), count - near)
        centres = np.concatenate([self.groups[chosen], self.topics[far]])
        widths = np.concatenate([self.widths[chosen], np.full(len(far), 0.6, np.float32)])
        return self._around(centres, widths), np.arange(count) < near


def build_database(path: Path, vectors: np.ndarray, types: np.ndarray,
                   texts: list[str] | None = None) -> None:
    """The real schema (migrations, vec0 table, change-log and keyword-index triggers),
    filled in batches inside one transaction — the fast path, not store.insert_memory one
    at a time. `texts`: the memories' contents (default: placeholders)."""
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    conn = db.connect(path)
    try:
        migrations.migrate(conn)
        now = store.utc_now()
        with db.transaction(conn):
            for start in range(0, len(vectors), 10_000):
                rows = range(start, min(len(vectors), start + 10_000))
                conn.executemany(
                    "INSERT INTO memories (id, content, type, tags, created_at, updated_at,"
                    " source, metadata) VALUES (?, ?, ?, '[]', ?, ?, 'bench', '{}')",
                    [(i + 1, texts[i] if texts else f"synthetic memory {i}",
                      TYPES[types[i]], now, now) for i in rows])
                conn.executemany(
                    "INSERT INTO memory_vectors (memory_id, embedding, type) VALUES (?, ?, ?)",
                    [(i + 1, store.vector_to_blob(vectors[i]), TYPES[types[i]])
                     for i in rows])
    finally:
        conn.close()


def _rss_mb_or_nan() -> float:
    rss = process_rss_mb()
    return float("nan") if rss is None else rss


def _timed(function: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return (time.perf_counter() - started) * 1000, result


def _exact_top(matrix: np.ndarray, query: np.ndarray, k: int,
               mask: np.ndarray | None = None) -> np.ndarray:
    """The numpy brute-force anchor: X @ q, argpartition, sort the k."""
    scores = matrix @ query
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def bench_size(workdir: Path, size: int, queries: int, *, k: int = 10,
               restart: bool = False, log: Callable[[str], None] = print) -> dict:
    """One collection size: build it, load the index, time ours against the anchors."""
    data = EmbeddingLikeData(seed=size)
    started = time.perf_counter()
    vectors = data.memories(size)
    types = data.rng.choice(len(TYPES), size=size, p=TYPE_SHARES).astype(np.uint8)
    probes, near = data.queries(queries)
    # A data folder as the server uses one: the benchmark's server can start on it.
    path = workdir / f"scale-{size}" / "lumara.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    texts = questions = None
    if size in HYBRID_SIZES:
        texts = [content for content, _ in distractor_memories(size, seed=size)]
        # Chat-like query texts that share words with some memories (other sentences from
        # the same templates); threshold -1: every keyword hit needs its cosine.
        questions = [content for content, _ in distractor_memories(queries, seed=size + 1)]
    build_database(path, vectors, types, texts)
    built_db_s = time.perf_counter() - started
    log(f"  {size:,}: database built in {built_db_s:.1f} s")

    gc.collect()
    rss_before = _rss_mb_or_nan()
    index = VectorIndex(path, cache_dir=path.parent / "index")
    load_ms, _ = _timed(index.refresh)
    stats = index.stats()
    rss_after = _rss_mb_or_nan()
    log(f"  {size:,}: index {stats['layout']} ready in {load_ms / 1000:.1f} s")
    restart_s = restart_source = None
    if restart:  # as a new process: the index saved beside the database (index_file.py)
        index.close()  # (a process that still held it would keep its vector file)
        index = VectorIndex(path, cache_dir=path.parent / "index")
        restart_ms, _ = _timed(index.refresh)
        restart_s, restart_source = round(restart_ms / 1000, 3), index.stats().get("source")
        log(f"  {size:,}: later start, index ready in {restart_s} s ({restart_source})")
        gc.collect()

    conn = db.connect(path)
    type_code = TYPES.index("method")
    is_method = types == type_code
    truth = [_exact_top(vectors, probe, k) + 1 for probe in probes]  # memory id = row + 1

    def ours(i: int, type: str | None = None) -> list[int]:
        hits = retrieval.search(conn, probes[i], k=k, threshold=-1.0, type=type, index=index)
        return [hit.memory.id for hit in hits]

    def raw(i: int) -> list:
        return conn.execute(
            "SELECT memory_id, distance FROM memory_vectors WHERE embedding MATCH ? AND k = ?",
            (store.vector_to_blob(probes[i]), k)).fetchall()

    typed_truth = [_exact_top(vectors, probe, k, is_method) + 1 for probe in probes]
    time.sleep(0.2)  # let numpy's OpenBLAS threads stop spinning before timing starts
    for i in range(min(5, queries)):  # warm caches and code paths
        ours(i)
    raw(0)
    raw_count = max(3, min(queries, int(RAW_QUERY_BUDGET_MS / max(0.05, 0.0006 * size))))
    def hybrid(i: int) -> list[int]:
        hits = retrieval.hybrid_search(conn, questions[i], probes[i], k=k, threshold=-1.0,
                                       index=index)
        return [hit.memory.id for hit in hits]

    ours_ms, raw_ms, typed_ms, recalls, typed_recalls = [], [], [], [], []
    hybrid_ms = []
    # Interleaved per query: a burst of load from elsewhere hits both alike.
    for i in range(queries):
        elapsed, found = _timed(lambda: ours(i))
        ours_ms.append(elapsed)
        recalls.append(len(set(found) & set(truth[i].tolist())) / k)
        if i < raw_count:
            raw_ms.append(_timed(lambda: raw(i))[0])
        elapsed, found = _timed(lambda: ours(i, "method"))
        typed_ms.append(elapsed)
        typed_recalls.append(len(set(found) & set(typed_truth[i].tolist())) / k)
        if questions:
            hybrid_ms.append(_timed(lambda: hybrid(i))[0])
    # The numpy anchor runs apart: after each product OpenBLAS's worker threads spin for a
    # while, and interleaved they would slow whatever is timed next on two cores.
    numpy_ms = [_timed(lambda: _exact_top(vectors, probe, k))[0] for probe in probes]
    conn.close()
    index.close()

    ours_p50, ours_p95 = _percentiles(ours_ms)
    raw_p50, raw_p95 = _percentiles(raw_ms)
    numpy_p50, numpy_p95 = _percentiles(numpy_ms)
    recalls = np.array(recalls)
    layout = stats["layout"]
    notes = f"{layout} layout"
    if layout == "ivf":
        notes += f", nlist {stats['nlist']}, nprobe {stats['nprobe']}"
    return {
        "name": f"Similarity search top-{k}, {size:,} memories",
        "size": size, "queries": queries, "layout": layout,
        "ours_p50_ms": round(ours_p50, 4), "ours_p95_ms": round(ours_p95, 4),
        "raw_name": "sqlite-vec 0.1.9 vec0 KNN (same file)",
        "raw_p50_ms": round(raw_p50, 4), "raw_p95_ms": round(raw_p95, 4),
        "raw_queries": len(raw_ms),
        "ratio": round(ours_p50 / raw_p50, 4),
        "numpy_p50_ms": round(numpy_p50, 4), "numpy_p95_ms": round(numpy_p95, 4),
        "ratio_numpy": round(ours_p50 / numpy_p50, 3),
        "recall": round(float(recalls.mean()), 4),
        "recall_near": round(float(recalls[near].mean()), 4),
        "recall_far": round(float(recalls[~near].mean()), 4) if (~near).any() else None,
        "typed_p50_ms": round(_percentiles(typed_ms)[0], 4),
        "typed_recall": round(float(np.mean(typed_recalls)), 4),
        "load_s": round(load_ms / 1000, 2), "read_s": stats.get("load_s"),
        "build_s": stats.get("build_s"), "restart_s": restart_s,
        "restart_source": restart_source,
        "index_mb": round(stats["bytes"] / 2**20, 1),
        "rss_delta_mb": round(rss_after - rss_before, 1),
        "db_build_s": round(built_db_s, 1),
        "notes": notes + "; synthetic embedding-like data (lumara_bench/search.py)",
        "samples": {"ours": ours_ms, "raw": raw_ms, "numpy": numpy_ms, "hybrid": hybrid_ms},
    }


def bench_search_scale(workdir: str | Path, sizes: tuple[int, ...] | None = None,
                       queries: int | None = None, quick: bool = False,
                       serve_sizes: tuple[int, ...] = (), models_dir: Path | None = None,
                       log: Callable[[str], None] = print) -> list[dict]:
    """One dict per collection size (see bench_size). Quick mode (CI): 1k, 10k and 100k
    with 40 queries each, well under a minute; full mode adds 1M (several minutes: the
    database alone takes about a minute to write); each size also starts again from the
    index saved beside its database. For `serve_sizes`, the real server then starts on
    that data folder too (server.measure_large_collection: start times and RSS)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    queries = queries or (QUICK_QUERIES if quick else FULL_QUERIES)
    results = []
    for size in sizes:
        result = bench_size(workdir, size, queries, restart=True, log=log)
        if size in serve_sizes:
            questions = [content for content, _ in distractor_memories(SERVER_SEARCHES,
                                                                       seed=size + 2)]
            result["server"] = measure_large_collection(workdir / f"scale-{size}",
                                                        SERVER_SEARCHES, questions, models_dir)
            log(f"  {size:,}: the server answered HTTP in "
                f"{result['server']['http_ms']:.0f} ms, its index was ready in "
                f"{result['server']['index_ready_ms']:.0f} ms; RSS "
                f"{result['server']['rss_mb']:.0f} MB")
        results.append(result)
        shutil.rmtree(workdir / f"scale-{size}", ignore_errors=True)  # 1M: ≈ 4 GB on disk
        gc.collect()
    return results


if __name__ == "__main__":
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=lambda text: tuple(int(s) for s in text.split(",")))
    parser.add_argument("--queries", type=int)
    parser.add_argument("--serve", type=lambda text: tuple(int(s) for s in text.split(",")),
                        default=(), help="sizes the real server also starts on")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for row in bench_search_scale(scratch, arguments.sizes, arguments.queries,
                                      arguments.quick, arguments.serve):
            print(json.dumps(row))
