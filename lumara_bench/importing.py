"""Import speed and the server's answers meanwhile: `python app.py` in a child process imports
a file of new memories through its background job (POST /api/import, then GET its status
until done) while the API is timed; beside it, in the same run, the app's embedder alone on
the same texts in batches — embedding is most of an import's work."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lumara_web.inference.embeddings import EmbeddingService
from lumara_web.memory import transfer
from lumara_web.storage import db, migrations, store

from .evaluation import distractor_memories
from .server import ServerProcess, api_latencies

# Memories already stored when the file is imported (its memories are compared with them).
STORED = 1_000
# Seconds between two reads of the import's status: its phases are timed by the job itself,
# so this only decides how soon the end is seen.
POLL_SECONDS = 0.2
# Seconds between two timed API requests: paced like a person using the page.
API_PAUSE = 0.02


def bench_import(embedder: Any, count: int, workdir: Path, runner: Callable | None = None,
                 idle_rounds: int = 40, log: Callable[[str], None] = print) -> dict:
    """Memories/s of importing `count` new memories (no vectors in the file: the server
    embeds them) into a server holding STORED, from the POST until the job is done; texts/s
    of the embedder alone on the same texts (batches of transfer.BATCH, its own size); and
    API latency on the idle server, then while the import runs."""
    memories = distractor_memories(STORED + count, seed=31)
    stored, imported = memories[:STORED], memories[STORED:]
    texts = [content for content, _ in imported]
    embeddings = EmbeddingService(embedder=embedder, runner=runner)
    raw_started = time.perf_counter()
    for start in range(0, len(texts), transfer.BATCH):
        embeddings.embed_many(texts[start:start + transfer.BATCH])
    raw_s = time.perf_counter() - raw_started

    data_dir = workdir / "import"
    _fill(data_dir, stored, embeddings)
    (data_dir / "models").symlink_to(workdir / "models", target_is_directory=True)
    body = json.dumps({"format": transfer.FORMAT, "version": transfer.VERSION,
                       "memories": [{"content": content, "type": type}
                                    for content, type in imported]}).encode()
    server = ServerProcess(data_dir)
    try:
        server.wait(ready=True)
        api_latencies(server.base, 20)  # warm: the first search embeds its query
        idle = api_latencies(server.base, idle_rounds, pause=API_PAUSE)
        # Timed from before the POST: reading and checking the file happen in the request.
        finished = threading.Event()
        final: dict = {}
        started = time.perf_counter()

        def run_import() -> None:
            try:
                request = urllib.request.Request(
                    server.base + "/api/import", data=body,
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=600) as response:
                    accepted = json.loads(response.read())
                final["accepted_s"] = time.perf_counter() - started
                while True:
                    state = server.get(accepted["status_url"])
                    final["phase"] = state["phase"]
                    if state["state"] != "running":
                        final.update(state, seconds=time.perf_counter() - started)
                        return
                    time.sleep(POLL_SECONDS)
            except Exception as error:  # reported below, not lost with the thread
                final["error"] = repr(error)
            finally:
                finished.set()

        importer = threading.Thread(target=run_import, daemon=True)
        importer.start()
        busy: list[float] = []
        by_phase: dict[str, list[float]] = {}  # the phase last seen when each was sent
        while not finished.is_set():
            phase = final.get("phase") or "accepting"
            busy += api_latencies(server.base, 1, pause=API_PAUSE)
            by_phase.setdefault(phase, []).append(busy[-1])
        importer.join()
    finally:
        server.stop()
    if final.get("state") != "done":
        raise RuntimeError(f"the import did not finish: {final}")
    result = final["result"]
    rate = count / final["seconds"]
    log(f"  import of {count:,} memories through the server's job: {rate:,.0f} memories/s "
        f"({result['imported']:,} added, {len(result['skipped_duplicates']):,} duplicates; "
        f"accepted after {final['accepted_s']:.1f} s, phases {final['phase_seconds']}); "
        f"raw embedding {len(texts) / raw_s:,.0f} texts/s; API meanwhile p50 "
        f"{np.percentile(busy, 50):.1f} ms, p95 {np.percentile(busy, 95):.1f} ms "
        f"({len(busy)} requests; p95 by phase: {_p95s(by_phase)})")
    return {"count": count, "per_s": rate, "raw_embedding_per_s": len(texts) / raw_s,
            "accepted_s": final["accepted_s"], "phase_seconds": final["phase_seconds"],
            "imported": result["imported"], "api_idle_ms": idle, "api_busy_ms": busy,
            "api_p95_by_phase": _p95s(by_phase)}


def _fill(data_dir: Path, items: list[tuple[str, str]], embeddings: EmbeddingService) -> None:
    """The memories stored before the import, with the model's vectors, written straight
    through the store (a database that records no model is taken to hold the server's)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = db.connect(data_dir / "lumara.db")
    try:
        migrations.migrate(conn)
        vectors = embeddings.embed_many([content for content, _ in items])
        with db.transaction(conn):
            for (content, type), vector in zip(items, vectors):
                store.insert_memory(conn, content=content, type=type, tags=[],
                                    embedding=vector)
    finally:
        conn.close()


def _p95s(by_phase: dict[str, list[float]]) -> str:
    return ", ".join(f"{phase} {np.percentile(samples, 95):.0f} ms"
                     for phase, samples in by_phase.items())
