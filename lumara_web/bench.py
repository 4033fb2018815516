"""`python -m lumara_web.bench`: measure Lumara's hot paths beside the raw libraries.

Every Lumara figure is printed next to the same operation done by raw sentence-transformers
or a raw sqlite-vec query in the same run, with the ratio, so overhead is visible and the
machine's speed cancels out. Results go to stdout and docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import PROJECT_ROOT, __version__, db, migrations, retrieval, store
from .bundled import EMBEDDING_MODEL_ID, embedding_model_path
from .embeddings import (EmbeddingService, PersistentEmbeddingCache,
                         SentenceTransformerEmbedder, import_sentence_transformers)

SUBJECTS = ["my sister", "the dentist", "our landlord", "my manager", "the car", "grandma",
            "the cabin", "my running club", "the bakery", "my passport", "the garden",
            "our neighbour", "the bank", "my cousin", "the library", "the vet"]
ACTIONS = ["moved to", "prefers", "reminded me about", "cancelled", "booked", "recommended",
           "complained about", "paid for", "forgot", "asked about", "changed", "fixed"]
OBJECTS = ["the appointment on Tuesday", "a flat near the river", "written updates on Fridays",
           "the blue notebook", "an oil change every 15,000 km", "the spare key", "cold brew",
           "the lease renewal in September", "a vegetarian recipe", "the train to Porto",
           "a new phone plan", "the tax forms", "the concert tickets", "the wifi password"]


def sentences(count: int, seed: int) -> list[str]:
    """Distinct, plausible memory-like sentences (distinct so nothing is a cache hit)."""
    rng = np.random.default_rng(seed)
    return [f"{SUBJECTS[rng.integers(len(SUBJECTS))].capitalize()} "
            f"{ACTIONS[rng.integers(len(ACTIONS))]} {OBJECTS[rng.integers(len(OBJECTS))]} "
            f"(note {seed}-{index})." for index in range(count)]


@dataclass
class Row:
    operation: str
    ours: list[float]  # milliseconds per sample
    raw: list[float] | None
    aim: str

    @staticmethod
    def p(samples: list[float], q: float) -> float:
        return float(np.percentile(samples, q))

    def cells(self) -> list[str]:
        ours50, ours95 = self.p(self.ours, 50), self.p(self.ours, 95)
        if self.raw is None:
            return [self.operation, fmt(ours50), fmt(ours95), "—", "—", self.aim]
        raw50 = self.p(self.raw, 50)
        ratio = ours50 / raw50
        shown = f"{ratio:.2f}×" if ratio >= 0.1 else f"{1 / ratio:,.0f}× faster"
        return [self.operation, fmt(ours50), fmt(ours95), fmt(raw50), shown, self.aim]


def fmt(ms: float) -> str:
    return f"{ms:.4f} ms" if ms < 0.1 else f"{ms:.2f} ms" if ms < 100 else f"{ms:,.0f} ms"


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def interleaved(ours: Callable[[int], object], raw: Callable[[int], object],
                repeats: int) -> tuple[list[float], list[float]]:
    """Alternate the two so drift (thermal, other load) hits both alike."""
    ours_ms, raw_ms = [], []
    for index in range(repeats):
        ours_ms.append(timed(lambda: ours(index)))
        raw_ms.append(timed(lambda: raw(index)))
    return ours_ms, raw_ms


def bench_embeddings(workdir: Path, repeats: int, batch_size: int) -> tuple[list[Row], dict]:
    started = time.perf_counter()
    sentence_transformers = import_sentence_transformers()
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model = sentence_transformers.SentenceTransformer(str(embedding_model_path()), device="cpu")
    load_seconds = time.perf_counter() - started

    # One model object serves both sides: the comparison isolates Lumara's own layers.
    db_path = workdir / "embeddings.db"
    conn = db.connect(db_path)
    migrations.migrate(conn)
    conn.close()
    service = EmbeddingService(cache=PersistentEmbeddingCache(db_path),
                               embedder=SentenceTransformerEmbedder(model, EMBEDDING_MODEL_ID),
                               memo_size=100_000)

    def raw_encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    for text in sentences(20, seed=1):  # warm both paths: first calls allocate
        service.embed(text)
        raw_encode([text + " raw"])

    ours_texts, raw_texts = sentences(repeats, seed=2), sentences(repeats, seed=3)
    single_ours, single_raw = interleaved(lambda i: service.embed(ours_texts[i]),
                                          lambda i: raw_encode([raw_texts[i]]), repeats)
    memo_hits = [timed(lambda: service.embed(ours_texts[i % 50])) for i in range(2000)]
    persistent_hits = []
    for text in ours_texts[:min(repeats, 200)]:
        service.clear_memo()
        persistent_hits.append(timed(lambda: service.embed(text)))

    # Three rounds, alternating, each on texts neither side has seen.
    batch_ours, batch_raw = interleaved(
        lambda i: service.embed_many(sentences(batch_size, seed=10 + i)),
        lambda i: raw_encode(sentences(batch_size, seed=20 + i)), 3)

    rows = [
        Row("Embedding, single, warm (computed)", single_ours, single_raw, "p50 ≤ 15 ms"),
        Row("Embedding, in-process memo hit", memo_hits, single_raw, "≤ 0.1 ms"),
        Row("Embedding, persistent cache hit", persistent_hits, single_raw, "≤ 0.1 ms"),
        Row(f"Embedding, batch of {batch_size:,} (3 rounds)", batch_ours, batch_raw,
            "≤ 1.2× raw"),
    ]
    facts = {"import_seconds": import_seconds, "load_seconds": load_seconds,
             "torch_threads": __import__("torch").get_num_threads(),
             "sentence_transformers": sentence_transformers.__version__}
    return rows, facts


def bench_search(workdir: Path, size: int, queries: int) -> Row:
    rng = np.random.default_rng(size)
    vectors = rng.standard_normal((size, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    conn = db.connect(workdir / f"search-{size}.db")
    migrations.migrate(conn)
    conn.execute("CREATE VIRTUAL TABLE raw_vectors USING vec0("
                 "embedding float[384] distance_metric=cosine)")
    with db.transaction(conn):
        for index, vector in enumerate(vectors):
            store.insert_memory(conn, content=f"synthetic memory {index}", type="knowledge",
                                tags=[], embedding=vector)
            conn.execute("INSERT INTO raw_vectors (rowid, embedding) VALUES (?, ?)",
                         (index + 1, store.vector_to_blob(vector)))
    probes = rng.standard_normal((queries, 384)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)

    def raw_query(index: int) -> list:
        return conn.execute("SELECT rowid, distance FROM raw_vectors WHERE embedding MATCH ?"
                            " AND k = 10", (store.vector_to_blob(probes[index]),)).fetchall()

    # threshold -1 keeps all k hits, so both sides return the same ten rows.
    def our_query(index: int) -> list:
        return retrieval.search(conn, probes[index], k=10, threshold=-1.0)

    for index in range(5):
        our_query(index), raw_query(index)
    ours, raw = interleaved(our_query, raw_query, queries)
    conn.close()
    aim = "≤ 1 ms" if size <= 1000 else "≤ 1.2× raw"
    return Row(f"Search top-10, {size:,} memories (vector given)", ours, raw, aim)


def machine_facts() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    conn = db.connect(":memory:")
    versions = db.versions(conn)
    conn.close()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", **versions}


def render(rows: list[Row], machine: dict, facts: dict) -> str:
    header = ["Operation", "Lumara p50", "Lumara p95", "Raw library p50", "Ratio", "Aim"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m lumara_web.bench` (Lumara {__version__}) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['system']}",
        f"- Python {machine['python']}, SQLite {machine['sqlite_version']} "
        f"({machine['driver']}), sqlite-vec {machine['sqlite_vec_version']}, "
        f"sentence-transformers {facts['sentence_transformers']}, "
        f"torch threads {facts['torch_threads']}",
        f"- Embedding model {EMBEDDING_MODEL_ID}: import of sentence-transformers "
        f"{facts['import_seconds']:.2f} s, model load {facts['load_seconds']:.2f} s",
        "",
        "Raw library = the same operation without Lumara: `SentenceTransformer.encode` on the "
        "same model object, or a bare `vec0` KNN query on a table of the same vectors. "
        "Ratio = Lumara p50 / raw p50 (below 1 means Lumara is faster, e.g. a cache hit).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lumara_web.bench", description=__doc__)
    parser.add_argument("--repeats", type=int, default=200, help="samples per timed operation")
    parser.add_argument("--batch", type=int, default=1000, help="texts in the batch test")
    parser.add_argument("--sizes", default="1000,10000", help="memory counts for search")
    parser.add_argument("--output", default=str(PROJECT_ROOT / "docs" / "BENCHMARKS.md"),
                        help="markdown file to write ('' to only print)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lumara-bench-") as tmp:
        workdir = Path(tmp)
        rows, facts = bench_embeddings(workdir, args.repeats, args.batch)
        for size in (int(value) for value in args.sizes.split(",") if value):
            rows.append(bench_search(workdir, size, args.repeats))
    report = render(rows, machine_facts(), facts)
    print(report)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(report)
        print(f"written to {args.output}")


if __name__ == "__main__":
    main()
