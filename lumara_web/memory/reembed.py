"""Re-embed every memory with the current embedding model, in batches, reporting progress.

Needed after changing the embedding model (vectors from two models cannot be compared).
Each batch is its own transaction: an interrupted run keeps what it finished and a second
run completes it (memories whose vector is already the model's are persistent-cache hits,
so repeating work costs little). Meanwhile searches see a mix of old and new vectors."""

from __future__ import annotations

from typing import Any, Callable

from ..inference.embeddings import EmbeddingService
from ..storage import meta_store, store

# 64 texts a batch: the embedder's own batch size, and a write lock held only ~0.1 s a batch.
BATCH = 64


def reembed_all(conn: Any, embeddings: EmbeddingService, *, batch: int = BATCH,
                progress: Callable[[int, int], None] | None = None) -> int:
    """Re-embed every memory; `progress(done, total)` after each batch. Returns how many
    vectors were replaced (memories edited or deleted during the run are skipped: an edit
    wrote its own fresh vector). At the end the database records the model as the one its
    vectors come from (meta_store.VECTORS_MODEL); a run that stops half-way leaves the old
    record, so the server starts the work again on its next start."""
    model_id = embeddings.model.wait(embeddings.wait_seconds).model_id
    memories = store.memory_contents(conn)
    replaced = 0
    if progress:
        progress(0, len(memories))
    for start in range(0, len(memories), batch):
        chunk = memories[start:start + batch]
        vectors = embeddings.embed_many(content for _, content in chunk)
        replaced += store.replace_vectors(
            conn, [(memory_id, content, vector)
                   for (memory_id, content), vector in zip(chunk, vectors)])
        if progress:
            progress(start + len(chunk), len(memories))
    meta_store.set_value(conn, meta_store.VECTORS_MODEL, model_id)
    return replaced


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """`[#########.....................]  300/1,000` for a terminal."""
    filled = width if not total else round(width * done / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>{len(f'{total:,}')},}/{total:,}"
