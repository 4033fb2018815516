"""Import speed: memories per second through the app's import (transfer.apply_import: parse,
embed in batches, compare with the stored memories and with each other, write in one
transaction) beside the embedder alone on the same texts — embedding is most of the work."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from lumara_web.config import load_settings
from lumara_web.inference.embeddings import EmbeddingService
from lumara_web.memory import transfer
from lumara_web.search.vector_index import VectorIndex
from lumara_web.storage import db, migrations

from .evaluation import distractor_memories

# Memories already stored when the file is imported (its memories are compared with them).
STORED = 1_000


def bench_import(embedder: Any, count: int, runner: Callable | None = None,
                 log: Callable[[str], None] = print) -> dict:
    """Memories/s of importing `count` new memories (embedded here, and again with their
    vectors in the file) into a database holding STORED, and texts/s of the embedder
    alone in the import's batches."""
    memories = distractor_memories(STORED + count, seed=31)
    stored, imported = memories[:STORED], memories[STORED:]
    texts = [content for content, _ in imported]
    with tempfile.TemporaryDirectory(prefix="lumara-import-") as tmp:
        settings = load_settings({"data_dir": tmp}, environ={})
        embeddings = EmbeddingService(embedder=embedder, runner=runner)
        raw_started = time.perf_counter()
        vectors = [embeddings.embed_many(texts[start:start + transfer.BATCH])
                   for start in range(0, len(texts), transfer.BATCH)]
        raw_s = time.perf_counter() - raw_started
        del vectors
        rates = {}
        for with_vectors in (False, True):
            path = Path(tmp) / f"import-{with_vectors}.db"
            conn = db.connect(path)
            migrations.migrate(conn)
            index = VectorIndex(path)
            service = EmbeddingService(embedder=embedder, runner=runner)
            transfer.apply_import(conn, transfer.parse_import(
                _document(stored, service if with_vectors else None), settings),
                embeddings=service, settings=settings, vector_index=index)
            index.refresh()
            document = transfer.parse_import(
                _document(imported, service if with_vectors else None), settings)
            started = time.perf_counter()
            result = transfer.apply_import(conn, document, embeddings=EmbeddingService(
                embedder=embedder, runner=runner), settings=settings, vector_index=index)
            elapsed = time.perf_counter() - started
            index.close()
            conn.close()
            rates[with_vectors] = (result.imported + len(result.skipped_duplicates)) / elapsed
            log(f"  import of {count:,} memories {'with' if with_vectors else 'without'} "
                f"vectors: {rates[with_vectors]:,.0f} memories/s "
                f"({result.imported:,} added, {len(result.skipped_duplicates):,} duplicates)")
    return {"count": count, "embedded_per_s": rates[False], "with_vectors_per_s": rates[True],
            "raw_embedding_per_s": len(texts) / raw_s}


def _document(items: list[tuple[str, str]], embeddings: EmbeddingService | None) -> dict:
    """An export document of `items`, with their vectors when `embeddings` is given."""
    memories = [{"content": content, "type": type} for content, type in items]
    document: dict = {"format": transfer.FORMAT, "version": transfer.VERSION,
                      "memories": memories}
    if embeddings is not None:
        vectors = embeddings.embed_many([content for content, _ in items])
        for memory, vector in zip(memories, vectors):
            memory["embedding"] = vector.tolist()
        document.update(embedding_model=embeddings.model_id,
                        dimensions=embeddings.dimensions)
    return document
